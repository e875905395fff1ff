"""Size limits applied after rendering: cut to what the receiving service accepts, with a visible marker.

Counting follows the service: UTF-8 bytes, characters, or SMS segments. A cut never splits a UTF-8 character, an
escape sequence, an entity or an HTML tag in half.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
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


def truncate_sms(text: str, max_segments: int, keep: Sequence[str] = ()) -> tuple[str, bool]:
    """`text` cut to `max_segments` segments with "..." (or "…" when what is left is UCS-2 anyway), and whether it
    was cut. The marker for GSM-7 text stays GSM-7, so cutting never switches the message to UCS-2.

    A cut never ends inside a URL: half a link opens nothing, and half a signed acknowledge link opens "this link
    is not valid" for the engineer just woken by the SMS. The links in `keep` (the acknowledge link, then the
    incident's page) are kept whole even when the cut would reach them: the lines that hold them stay and the
    other lines are shortened to make room; if those lines are too long themselves, only the links stay whole and
    the rest of the text is shortened. A link that cannot fit even with nothing else (a long PUBLIC_URL with
    SMS_MAX_SEGMENTS=1) is left out with its line, the last of `keep` first: an SMS that says which incident it is
    beats a link that cannot be opened.
    """
    if sms_segments(text).segments <= max_segments:
        return text, False
    pattern = _links_pattern(keep)
    links = [link for link in dict.fromkeys(keep) if link in _found(pattern, text)]
    plain = _fit(_layout(text, pattern, (), ()), max_segments)
    if plain is not None and _found(pattern, plain) >= set(links):
        return plain, True
    for count in range(len(links), 0, -1):
        kept, dropped = links[:count], links[count:]
        for split in (False, True):
            cut = _fit(_layout(text, pattern, kept, dropped, split=split), max_segments)
            if cut is not None:
                return cut, True
    return _fit(_layout(text, pattern, (), links), max_segments) or "", True


_URL = re.compile(r"https?://\S+")


def _links_pattern(links: Sequence[str]) -> re.Pattern | None:
    """What finds the links in a text, the longer first: the incident's page is the start of its acknowledge
    link, and must not be found inside it."""
    links = sorted({link for link in links if link}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, links))) if links else None


def _found(pattern: re.Pattern | None, text: str) -> set[str]:
    return {match.group() for match in pattern.finditer(text)} if pattern else set()


def _without(pattern: re.Pattern | None, links: Collection[str], line: str) -> str:
    """`line` without the given links (found as `pattern` finds them), its spaces collapsed."""
    if pattern is None:
        return line
    return " ".join(pattern.sub(lambda match: "" if match.group() in links else match.group(), line).split())


def _layout(
    text: str, pattern: re.Pattern | None, kept: Sequence[str], dropped: Sequence[str], *, split: bool = False
) -> list[tuple[bool, str]]:
    """The lines of `text` as (kept whole, line). The lines that hold a link of `kept` are kept whole (with
    `split`, only their links are: the rest of such a line comes before them as a line that may be cut); the lines
    that hold a link of `dropped` are left out (only the link is, when nothing else would be left)."""
    lines = text.split("\n")
    if dropped:
        remaining = [line for line in lines if not _found(pattern, line) & set(dropped)]
        lines = (
            remaining
            if any(line.strip() for line in remaining)
            else [_without(pattern, dropped, line) for line in lines]
        )
    layout: list[tuple[bool, str]] = []
    for line in lines:
        links = (
            [link for link in dict.fromkeys(m.group() for m in pattern.finditer(line)) if link in kept]
            if pattern
            else []
        )
        if not links:
            layout.append((False, line))
        elif not split:
            layout.append((True, line))
        else:
            rest = _without(pattern, links, line)
            if rest:
                layout.append((False, rest))
            layout.append((True, " ".join(links)))
    return layout


def _url_safe(line: str, end: int) -> str:
    """`line` cut at `end`, or before the URL `end` falls in."""
    for match in _URL.finditer(line):
        if match.start() < end < match.end():
            end = match.start()
            break
    return line[:end].rstrip()


def _fit(layout: list[tuple[bool, str]], max_segments: int) -> str | None:
    """The lines of `layout`, those not kept whole cut (from the end, with the marker) to what fits in
    `max_segments` with the others; None when the lines kept whole do not fit on their own."""
    # More characters than this never fit, whatever the encoding: the search need not look past them, and of the
    # lines past them only the first that says something counts (the cut is there, at the latest).
    most = max_segments * GSM7_SINGLE
    trimmed: list[tuple[bool, str]] = []
    free, past = 0, False
    for whole, line in layout:
        if whole or free <= most:
            trimmed.append((whole, line))
            free += 0 if whole else len(line) + 1
        elif line.strip() and not past:
            trimmed.append((whole, line))
            past = True
    layout = trimmed
    low, high = 0, min(free, most)
    if sms_segments(_assemble(layout, 0)).segments > max_segments:
        return None
    while low < high:  # the most characters of the lines that may be cut that still fit
        middle = (low + high + 1) // 2
        if sms_segments(_assemble(layout, middle)).segments <= max_segments:
            low = middle
        else:
            high = middle - 1
    return _assemble(layout, low)


def _assemble(layout: list[tuple[bool, str]], budget: int) -> str:
    """The lines of `layout` with `budget` characters of those that may be cut, and the marker where they were."""
    out: list[str] = []
    mark: int | None = None  # the line the marker goes after
    cut = False
    for whole, line in layout:
        if whole:
            out.append(line)
        elif not cut and budget >= len(line):
            out.append(line)
            budget -= len(line) + 1
            mark = len(out) - 1
        elif line.strip() and not cut:
            cut = True
            kept = _url_safe(line, max(budget, 0))
            if kept:
                out.append(kept)
                mark = len(out) - 1
            elif mark is None:  # nothing of it stays, nor before it: the marker shows where it was
                out.append("")
                mark = len(out) - 1
    if not cut:
        return "\n".join(out).strip()
    marker = "..." if is_gsm7("".join(out)) else "…"
    out[mark] = out[mark].rstrip() + marker
    return "\n".join(out).strip()


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


def truncate(text: str, slot: Slot, *, max_segments: int, keep: Sequence[str] = ()) -> tuple[str, bool]:
    """`text` cut to the slot's limit with a visible marker, and whether it was cut. In an SMS, the links in `keep`
    stay whole (see truncate_sms).

    Raises ValueError for a JSON body over its limit: half a JSON document is not a document.
    """
    if slot.unit == Unit.SMS:
        # SMS_MAX_SEGMENTS (at most 10) always stops the text before the slot's 1600 characters.
        return truncate_sms(text, max_segments, keep)
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
