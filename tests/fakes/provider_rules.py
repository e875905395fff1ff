"""What some providers check in a request, as they check it: DingTalk's and Feishu's bot signatures and Telegram's
HTML parse mode. The fake provider server (provider_server) refuses what these refuse; tests sign with them."""

from __future__ import annotations

import base64
import hashlib
import hmac
from html.parser import HTMLParser


def dingtalk_sign(timestamp_ms: str, secret: str) -> str:
    """DingTalk's signature (before URL-encoding): base64(HMAC-SHA256(secret, timestamp + "\\n" + secret))."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def feishu_sign(timestamp_s: str, secret: str) -> str:
    """Feishu's signature: base64(HMAC-SHA256(key=timestamp + "\\n" + secret, message=b""))."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


# Telegram's HTML parse mode (protocols.md §6).
TELEGRAM_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "tg-spoiler", "blockquote"}
    | {"span", "tg-emoji"}  # <span class="tg-spoiler">, <tg-emoji emoji-id>: in the Bot API's HTML style
)


class _TelegramEntities(HTMLParser):
    """Parses a message as Telegram's HTML mode does: its tags only, each closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open: list[str] = []
        self.error = ""

    def _fail(self, error: str) -> None:
        self.error = self.error or error

    def handle_starttag(self, tag, attrs):
        if tag not in TELEGRAM_TAGS:
            self._fail(f'Unsupported start tag "{tag}" at byte offset {self.getpos()[1]}')
        self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        self._fail(f'Unsupported start tag "{tag}/" at byte offset {self.getpos()[1]}')

    def handle_endtag(self, tag):
        if not self.open or self.open[-1] != tag:
            expected = f", expected </{self.open[-1]}>" if self.open else ""
            self._fail(f"Unmatched end tag at byte offset {self.getpos()[1]}{expected}, found </{tag}>")
        else:
            self.open.pop()

    def handle_data(self, data):
        if "<" in data:
            self._fail(f'Unsupported start tag "" at byte offset {self.getpos()[1]}')


def telegram_entities_error(text: str) -> str:
    """Why Telegram cannot parse `text` as HTML ("" when it can)."""
    parser = _TelegramEntities()
    parser.feed(text)
    parser.close()
    if not parser.error and parser.open:
        parser.error = f'Can\'t find end tag corresponding to start tag "{parser.open[-1]}"'
    return parser.error
