"""The template slots: one body per notification method part or bot kind, with its markup and its size limit.

A slot says what a provider will wrap: the email method sends three slots (subject, text, HTML), a bot sends one.
Limits are counted the way the receiving service counts them (bytes of UTF-8, characters, or SMS segments), from
`shared/reference/protocols.md` and Flashduty's documented caps; `docs/templates.md` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

DEFAULTS_DIR = Path(settings.BASE_DIR) / "templates" / "notifications" / "defaults"


class MarkupKind(StrEnum):
    """How a slot's text is marked up, which decides how every `{{ value }}` is escaped."""

    TEXT = "text"  # plain text: nothing to escape
    HTML = "html"  # email HTML, Telegram's HTML parse mode
    MRKDWN = "mrkdwn"  # Slack
    MARKDOWN = "markdown"  # DingTalk, WeCom, Teams and Zoom markdown
    LARK_MD = "lark_md"  # Feishu/Lark card text
    JSON = "json"  # the custom webhook's body


class Unit(StrEnum):
    BYTES = "bytes"  # UTF-8 bytes
    CHARS = "chars"  # characters (code points)
    SMS = "sms"  # SMS segments (GSM-7 or UCS-2), see limits.sms_segments


# Characters an SMS body may render to (the sandbox's longest string) before its cut.
SMS_RENDER_CAP = 100_000


@dataclass(frozen=True)
class Slot:
    name: str
    label: str | Promise
    markup: MarkupKind
    limit: int  # in `unit`; for SMS the character ceiling of one message, the segments come from the settings
    unit: Unit
    single_line: bool = False  # whitespace (newlines included) collapses to single spaces
    # HTML the service parses strictly: the only tags it takes (None: no check). Text it would refuse is a
    # template failure (see markup.html_problem).
    html_tags: frozenset[str] | None = None

    @property
    def default_path(self) -> Path:
        return DEFAULTS_DIR / f"{self.name}.j2"

    def default_source(self) -> str:
        return self.default_path.read_text(encoding="utf-8")

    @property
    def render_cap(self) -> int:
        """Characters a render may produce before it is stopped (a byte limit is never below its characters).

        An SMS renders on past its limit: a link the template writes after a long text (the acknowledge link
        after the description) is kept whole when the text is cut (limits.truncate_sms), once it is rendered."""
        return max(self.limit + 1, SMS_RENDER_CAP) if self.unit == Unit.SMS else self.limit + 1

    def limit_display(self) -> str:
        if self.unit == Unit.SMS:
            return _("%(n)d SMS segments") % {"n": settings.SMS_MAX_SEGMENTS}
        if self.unit == Unit.BYTES:
            return _("%(n)d bytes") % {"n": self.limit}
        return _("%(n)d characters") % {"n": self.limit}


# Telegram's HTML parse mode (protocols.md §6); anything else is 400 "can't parse entities".
TELEGRAM_TAGS = frozenset(
    {
        *("b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "blockquote"),
        *("tg-spoiler", "span", "tg-emoji"),  # <span class="tg-spoiler">, <tg-emoji emoji-id="…">: Bot API formatting
    }
)

SLOTS: dict[str, Slot] = {
    slot.name: slot
    for slot in (
        # Subjects are folded by mail clients past ~78 characters; 200 keeps long titles readable.
        Slot("email_subject", _("Email subject"), MarkupKind.TEXT, 200, Unit.CHARS, single_line=True),
        Slot("email_text", _("Email plain text"), MarkupKind.TEXT, 100_000, Unit.BYTES),
        # Gmail clips HTML past 102 KB.
        Slot("email_html", _("Email HTML"), MarkupKind.HTML, 100_000, Unit.BYTES),
        # Twilio refuses a Body over 1600 characters; SMS_MAX_SEGMENTS usually stops much earlier.
        Slot("sms", _("SMS"), MarkupKind.TEXT, 1600, Unit.SMS),
        # What the voice call says; it is wrapped in TwiML (4000 characters in all) with the keypad menu.
        Slot("voice", _("Voice call (spoken)"), MarkupKind.TEXT, 2000, Unit.CHARS, single_line=True),
        # APNs and FCM take 4096 bytes for the whole payload, which also carries ids and sound settings.
        Slot("push_title", _("App push title"), MarkupKind.TEXT, 200, Unit.BYTES, single_line=True),
        Slot("push_body", _("App push body"), MarkupKind.TEXT, 1800, Unit.BYTES),
        # DingTalk takes 20000 bytes, WeCom markdown 4096 and Feishu 20 KB for the whole body; Flashduty caps
        # the text of these bots at 4000 bytes, leaving room for the @mentions the bot adds.
        Slot("dingtalk", _("DingTalk bot (markdown)"), MarkupKind.MARKDOWN, 4000, Unit.BYTES),
        Slot("feishu", _("Feishu/Lark bot (lark_md)"), MarkupKind.LARK_MD, 4000, Unit.BYTES),
        Slot("wecom", _("WeCom bot (markdown)"), MarkupKind.MARKDOWN, 4000, Unit.BYTES),
        # Slack shows up to 3000 characters per section block: the Slack bot splits the text at line breaks
        # into section blocks (see limits.split_blocks); Flashduty caps the whole text at about 15000.
        Slot("slack", _("Slack bot (mrkdwn)"), MarkupKind.MRKDWN, 15_000, Unit.CHARS),
        Slot("zoom", _("Zoom bot (markdown)"), MarkupKind.MARKDOWN, 4000, Unit.CHARS),
        # Telegram counts 4096 characters after parsing the HTML; counting the tags too errs on the safe side.
        Slot("telegram", _("Telegram bot (HTML)"), MarkupKind.HTML, 4096, Unit.CHARS, html_tags=TELEGRAM_TAGS),
        # Teams refuses cards over 28 KB; the card around the text takes the rest.
        Slot("teams", _("Microsoft Teams bot (markdown)"), MarkupKind.MARKDOWN, 24_000, Unit.BYTES),
        Slot("webhook", _("Custom webhook (JSON)"), MarkupKind.JSON, 256 * 1024, Unit.BYTES),
    )
}


class UnknownSlot(KeyError):
    pass


def slot(name: str) -> Slot:
    try:
        return SLOTS[name]
    except KeyError:
        raise UnknownSlot(name) from None
