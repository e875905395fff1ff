"""The interface every notification method and bot provider implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar


class Outcome(StrEnum):
    SENT = "sent"  # the provider accepted the message
    RETRYABLE = "retryable"  # try again later (timeouts, 5xx, rate limits)
    PERMANENT = "permanent"  # retrying cannot help (invalid address, revoked credentials)


@dataclass(frozen=True)
class SendResult:
    """What one attempt came to, as plain data; the delivery service records it and applies its consequences."""

    outcome: Outcome
    provider_id: str = ""
    error: str = ""
    retry_after: float | None = None  # seconds, when the provider said how long to wait
    # The provider said the recipient's contact (the method's `contact`) cannot be reached for good: flag it.
    flag: str = ""
    # App push: devices whose token the push service reported gone (delete them), and those that took the push.
    gone_devices: tuple[int, ...] = ()
    pushed_devices: tuple[int, ...] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)  # kept in the delivery's attempt log

    @classmethod
    def sent(cls, provider_id: str = "", **kwargs) -> SendResult:
        return cls(Outcome.SENT, provider_id=provider_id, **kwargs)

    @classmethod
    def retryable(cls, error: str, retry_after: float | None = None, **kwargs) -> SendResult:
        return cls(Outcome.RETRYABLE, error=error, retry_after=retry_after, **kwargs)

    @classmethod
    def permanent(cls, error: str, **kwargs) -> SendResult:
        return cls(Outcome.PERMANENT, error=error, **kwargs)


class NotificationMethod(ABC):
    """A direct way to reach a person (email, SMS, voice, app push).

    `slots` names the template slots its message is made of (channels_app.templating.slots); the delivery
    renders them with the escalation rule's template set and hands the texts to `send` as `message`, with the
    plain-data `context` they were rendered from and the delivery row (its id, recipient and callback code).
    `address_for` says where a person is reached by this method (None: they cannot be, and
    `unreachable_reason` says why); `send` wraps the texts for the provider, hands them over and classifies the
    answer.

    `contact` names the person's contact a permanent recipient error flags ("phone", "email"; None for none);
    `quota_setting` names the setting that caps how many of these one person receives per day; `kept_slots` are
    stored on the delivery before sending, for the provider's callbacks (the spoken text of a call).
    """

    key: ClassVar[str]
    label: ClassVar[str]
    slots: ClassVar[tuple[str, ...]]
    contact: ClassVar[str | None] = None
    quota_setting: ClassVar[str | None] = None
    kept_slots: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def address_for(self, person: Any) -> str | None: ...

    def unreachable_reason(self, person: Any) -> str:
        return f"no verified {self.key} contact"

    @abstractmethod
    def send(
        self, *, message: Mapping[str, str], context: Mapping[str, Any], address: str, delivery: Any
    ) -> SendResult: ...

    def send_test(
        self, *, message: Mapping[str, str], context: Mapping[str, Any], address: str, person: Any
    ) -> SendResult:
        """Send a test message (a person checking that this method reaches them): the message as a notification
        would be sent, with no incident or delivery behind it. Methods whose provider calls back (a voice call's
        keypad) override this with a message that needs no callback."""
        return self.send(message=message, context=context, address=address, delivery=TestDelivery(person))


@dataclass(frozen=True)
class TestDelivery:
    """What a provider reads of a delivery, for a test message that has none."""

    person: Any
    pk: int = 0
    incident_id: int = 0
    event: str = "test"
    callback_code: str = ""

    @property
    def recipient_id(self) -> int:
        return self.person.pk

    @property
    def recipient(self) -> Any:
        return self.person
