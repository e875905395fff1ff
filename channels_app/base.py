"""The interface every notification method and bot provider implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar


class Outcome(StrEnum):
    SENT = "sent"  # the provider accepted the message
    RETRYABLE = "retryable"  # try again later (timeouts, 5xx, rate limits)
    PERMANENT = "permanent"  # retrying cannot help (invalid address, revoked credentials)


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    provider_id: str = ""
    error: str = ""
    retry_after: float | None = None  # seconds, when the provider said how long to wait

    @classmethod
    def sent(cls, provider_id: str = "") -> SendResult:
        return cls(Outcome.SENT, provider_id=provider_id)

    @classmethod
    def retryable(cls, error: str, retry_after: float | None = None) -> SendResult:
        return cls(Outcome.RETRYABLE, error=error, retry_after=retry_after)

    @classmethod
    def permanent(cls, error: str) -> SendResult:
        return cls(Outcome.PERMANENT, error=error)


class NotificationMethod(ABC):
    """A direct way to reach a person (email, SMS, voice, app push).

    `slots` names the template slots its message is made of (channels_app.templating.slots); the delivery
    renders them with the escalation rule's template set and hands the texts to `send` as `message`, with the
    plain-data `context` they were rendered from. `address_for` says where a person is reached by this method
    (None: they cannot be, and why is recorded); `send` wraps the texts for the provider, hands them over and
    classifies the answer.
    """

    key: ClassVar[str]
    label: ClassVar[str]
    slots: ClassVar[tuple[str, ...]]

    @abstractmethod
    def address_for(self, person: Any) -> str | None: ...

    @abstractmethod
    def send(
        self, *, message: Mapping[str, str], context: Mapping[str, Any], address: str, delivery_id: int
    ) -> SendResult: ...
