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


class IllegalTransition(ApplicationError):
    """The incident is not in a state that allows this action (acknowledge a closed incident, for example)."""

    status = 409
    code = "IllegalTransition"
