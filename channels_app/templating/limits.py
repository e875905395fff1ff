"""Size limits applied after rendering: cut to what the receiving service accepts, with a visible marker.

Counting follows the service: UTF-8 bytes, characters, or SMS segments. A cut never splits a UTF-8 character, an
escape sequence, an entity or an HTML tag in half.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from django.utils.translation import gettext as _

from channels_app.templating.slots import MarkupKind, Slot, Unit

# GSM 03.38: the basic set (one septet each) and the extension table (an escape plus one septet: two).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_PART = 160, 153  # septets in a single message / in each part of a concatenated one
UCS2_SINGLE, UCS2_PART = 70, 67  # UTF-16 code units likewise


@dataclass(frozen=True)
class SmsCount:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in text)


def _unit_sizes(text: str, gsm: bool) -> list[int]:
    if gsm:
        return [2 if ch in GSM7_EXTENDED else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def sms_segments(text: str) -> SmsCount:
    """How many segments an SMS takes. A character is never split across two parts (an extended GSM character's
    escape and its septet, a UCS-2 surrogate pair), so a part may hold one unit less than its size."""
    gsm = is_gsm7(text)
    sizes = _unit_sizes(text, gsm)
    single, part = (GSM7_SINGLE, GSM7_PART) if gsm else (UCS2_SINGLE, UCS2_PART)
    units = sum(sizes)
    encoding = "GSM-7" if gsm else "UCS-2"
    if units <= single:
        return SmsCount(encoding, units, 1 if text else 0)
    segments, used = 1, 0
    for size in sizes:
        if used + size > part:
            segments += 1
            used = 0
        used += size
    return SmsCount(encoding, units, segments)


def truncate_sms(text: str, max_segments: int) -> tuple[str, bool]:
    """`text` cut to `max_segments` segments with "..." (or "…" when the text is UCS-2 anyway), and whether it
    was cut. The marker for GSM-7 text stays GSM-7, so cutting never switches the message to UCS-2."""
    if sms_segments(text).segments <= max_segments:
        return text, False
    marker = "..." if is_gsm7(text) else "…"
    low, high = 0, len(text)
    while low < high:  # the longest prefix that still fits with the marker
        middle = (low + high + 1) // 2
        if sms_segments(text[:middle].rstrip() + marker).segments <= max_segments:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + marker, True


_PARTIAL_ENTITY = re.compile(r"&#?\w*$")
_PARTIAL_TAG = re.compile(r"<[^>]*$")
_ODD_BACKSLASHES = re.compile(r"(?<!\\)(?:\\\\)*\\$")


def _clean_cut(text: str, kind: MarkupKind) -> str:
    """Drop what a cut left half-written at the end: an entity, a tag, a dangling escape."""
    if kind in (MarkupKind.HTML, MarkupKind.MRKDWN, MarkupKind.LARK_MD, MarkupKind.MARKDOWN):
        text = _PARTIAL_ENTITY.sub("", text)
    if kind in (MarkupKind.HTML, MarkupKind.MRKDWN):
        text = _PARTIAL_TAG.sub("", text)
    if kind == MarkupKind.MARKDOWN and _ODD_BACKSLASHES.search(text):
        text = text[:-1]
    return text


def marker_for(slot: Slot) -> str:
    if slot.single_line:
        return "…"
    if slot.markup == MarkupKind.HTML and slot.name == "email_html":
        return "<p>… " + _("(truncated)") + "</p>"
    return "\n… " + _("(truncated)")


def size_of(text: str, unit: Unit) -> int:
    return len(text.encode("utf-8")) if unit == Unit.BYTES else len(text)


def truncate(text: str, slot: Slot, *, max_segments: int) -> tuple[str, bool]:
    """`text` cut to the slot's limit with a visible marker, and whether it was cut.

    Raises ValueError for a JSON body over its limit: half a JSON document is not a document.
    """
    if slot.unit == Unit.SMS:
        too_long = len(text) > slot.limit
        text, cut = truncate_sms(text[: slot.limit], max_segments)
        return text, cut or too_long
    if size_of(text, slot.unit) <= slot.limit:
        return text, False
    if slot.markup == MarkupKind.JSON:
        size = size_of(text, slot.unit)
        raise ValueError(_("The body is %(size)d bytes; the limit is %(limit)d.") % {"size": size, "limit": slot.limit})
    marker = marker_for(slot)
    room = slot.limit - size_of(marker, slot.unit)
    while True:
        # Decoding with "ignore" drops the partial character a byte cut may leave at the end.
        kept = text.encode("utf-8")[:room].decode("utf-8", "ignore") if slot.unit == Unit.BYTES else text[:room]
        kept = _clean_cut(kept.rstrip(), slot.markup)
        # HTML cut inside an element is closed again: Telegram refuses a text with a tag left open.
        closing = _closing_tags(kept) if slot.markup == MarkupKind.HTML else ""
        if not closing or size_of(kept + closing + marker, slot.unit) <= slot.limit or room <= 0:
            return kept + closing + marker, True
        room -= size_of(closing, slot.unit)


# Elements that have no end tag.
_VOID_TAGS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)


class _OpenTags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag not in _VOID_TAGS:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.open:  # closes it and whatever was left open inside it
            del self.open[len(self.open) - 1 - self.open[::-1].index(tag) :]


def _closing_tags(html: str) -> str:
    """The end tags of the elements `html` leaves open, innermost first."""
    parser = _OpenTags()
    parser.feed(html)
    return "".join(f"</{tag}>" for tag in reversed(parser.open))


def split_blocks(text: str, size: int = 3000) -> list[str]:
    """`text` in pieces of at most `size` characters, split at line breaks where possible (a Slack section block
    holds 3000 characters)."""
    pieces: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line) > size:  # a single line longer than a block
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:size])
            line = line[size:]
        if len(current) + len(line) > size:
            pieces.append(current)
            current = ""
        current += line
    if current:
        pieces.append(current)
    return [piece.rstrip("\n") for piece in pieces if piece.strip()]
