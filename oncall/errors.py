"""Errors the domain raises; the API maps each to a status and a stable code in one exception handler."""

from __future__ import annotations


class ApplicationError(Exception):
    """A request the platform understood and refuses. `code` is stable; `message` is for people."""

    status = 400
    code = "InvalidParameter"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotRouted(ApplicationError):
    """An event has nowhere to go: no routing case matched and there is no default channel."""

    code = "NoRoute"


class IntegrationGone(ApplicationError):
    """The push's integration was deleted after this process looked its key up (the lookup is cached briefly)."""

    status = 401
    code = "Unauthorized"


class SignedOut(ApplicationError):
    """The request's token was revoked while the request ran (the phone app's device was unlinked meanwhile)."""

    status = 401
    code = "Unauthorized"


class IllegalTransition(ApplicationError):
    """The incident is not in a state that allows this action (acknowledge a closed incident, for example)."""

    status = 409
    code = "IllegalTransition"


class Conflict(ApplicationError):
    """The request clashes with someone else's data (a phone number another person uses, for example)."""

    status = 409
    code = "Conflict"


class RateLimited(ApplicationError):
    """Too many requests of this kind; `retry_after` says in how many seconds one is accepted again."""

    status = 429
    code = "RequestTooFrequently"

    def __init__(self, message: str, *, retry_after: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = max(1, int(retry_after))


class ServiceUnavailable(ApplicationError):
    """A provider the request needs could not be reached just now; the same request may succeed later."""

    status = 503
    code = "ServiceUnavailable"
