"""The interface every notification method and bot provider implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar
from urllib.parse import urlsplit

from oncall.lib import http


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
    # The provider said "too fast" (a rate limit): wait retry_after and try again, without counting the attempt.
    rate_limited: bool = False
    # Bots that send several requests per message (Telegram chats, WeCom's mention text): what is done so far,
    # kept on the delivery so a retry sends only the rest.
    progress: Mapping[str, Any] | None = None
    # Settings the provider told us to change on the bot (Telegram's migrate_to_chat_id: the new chat ids).
    bot_changes: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def sent(cls, provider_id: str = "", **kwargs) -> SendResult:
        return cls(Outcome.SENT, provider_id=provider_id, **kwargs)

    @classmethod
    def retryable(cls, error: str, retry_after: float | None = None, **kwargs) -> SendResult:
        return cls(Outcome.RETRYABLE, error=error, retry_after=retry_after, **kwargs)

    @classmethod
    def permanent(cls, error: str, **kwargs) -> SendResult:
        return cls(Outcome.PERMANENT, error=error, **kwargs)


def provider_key_of(url: str) -> str:
    """The bulkhead key of a provider reached at `url`: its host, and its port when the URL names one; "" for a URL
    no request can be made to (the attempt fails for good without calling anyone: see oncall.lib.http.url_problem)."""
    if http.url_problem(url) is not None:
        return ""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return f"{host}:{parts.port}" if parts.port else host


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

    `reports_back` says the provider calls back about every message it accepts, at a URL carrying the delivery's
    callback code (Twilio's status callbacks). An attempt whose worker died before recording the answer is then
    settled from the callback instead of being sent again (channels_app.outcomes.deliveries_settle_interrupted).
    Methods without it are sent again, with markers that let the receiver recognise the repeat (the same email
    Message-ID, the same push collapse id).
    """

    key: ClassVar[str]
    label: ClassVar[str]
    slots: ClassVar[tuple[str, ...]]
    contact: ClassVar[str | None] = None
    quota_setting: ClassVar[str | None] = None
    kept_slots: ClassVar[tuple[str, ...]] = ()
    reports_back: ClassVar[bool] = False

    @abstractmethod
    def address_for(self, person: Any) -> str | None: ...

    def unreachable_reason(self, person: Any) -> str:
        return f"no verified {self.key} contact"

    def provider_key(self) -> str:
        """Which provider this method's attempts call, for the delivery bulkhead (channels_app.bulkhead): methods
        that share a provider's API return the same key (SMS and voice: Twilio's host)."""
        return f"method:{self.key}"

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


# -- bots ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BotTarget:
    """What a bot provider needs of a bot, as plain data (the secrets included: never log this)."""

    id: int
    name: str
    url: str
    secret: str = ""
    chat_ids: tuple[str, ...] = ()
    message_format: str = "markdown"
    at_all: bool = False


@dataclass(frozen=True)
class Mention:
    """A person a bot message is about: `phone` is their verified number (E.164) or "", `im_id` their user id on
    the bot's platform from its mapping table, or ""."""

    person_id: int | None
    name: str
    email: str = ""
    phone: str = ""
    im_id: str = ""


@dataclass(frozen=True)
class BotMessage:
    """One message for a bot: the rendered template slot, the context it came from, who to @mention, and what
    earlier attempts already delivered (`progress`, see SendResult)."""

    text: str
    context: Mapping[str, Any]
    mentions: tuple[Mention, ...] = ()
    progress: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RateLimit:
    """At most `count` messages in any `seconds`-long window."""

    count: int
    seconds: float


class BotProvider(ABC):
    """A kind of group-chat bot: how its messages are built, signed, sent and judged.

    `slot` is the template slot of its text; `fields` the bot settings the kind uses beside its URL (shown in the
    admin); `secret_label` names its secret (None: the kind has none) and `secret_help` says what it is for;
    `mapping_platform` the user mapping tables its @mentions read (None: it needs none); `mentions_need_table`
    says whether @mentions work only with a table; `rate_limits` pace messages to one bot; `default_url` is used
    when the bot's URL is empty (Telegram's API).

    `send` builds the requests as plain data (see each module's `build`), sends them through oncall.lib.http and
    classifies the answers as sent, retryable (with `rate_limited` for "too fast") or permanent.
    """

    key: ClassVar[str]
    label: ClassVar[Any]
    slot: ClassVar[str]
    url_help: ClassVar[Any] = ""
    secret_label: ClassVar[Any] = None
    secret_help: ClassVar[Any] = ""
    secret_required: ClassVar[bool] = False
    fields: ClassVar[tuple[str, ...]] = ()
    mapping_platform: ClassVar[str | None] = None
    mentions_need_table: ClassVar[bool] = False
    mention_help: ClassVar[Any] = ""
    rate_limits: ClassVar[tuple[RateLimit, ...]] = ()
    default_url: ClassVar[str] = ""

    def requests_for(self, bot: BotTarget, mentions: tuple[Mention, ...]) -> int:
        """How many requests one message takes (what pacing counts against the rate limits)."""
        return 1

    @abstractmethod
    def send(self, *, bot: BotTarget, message: BotMessage, now: Any) -> SendResult: ...
