"""Escaping a value for the markup a slot is written in, so data (a title, a label) can never become markup.

What each target treats as markup, and how it is neutralised:
- HTML (email, Telegram): `& < > " '` as entities (Telegram's HTML mode accepts numeric entities).
- Slack mrkdwn: `& < >` as entities, and only those, as Slack documents; `<` is what mentions (`<!channel>`,
  `<@U…>`) and links start with.
- Markdown (DingTalk, WeCom, Teams, Zoom): a backslash before `\\ * _ ` [ ] ~ # |`, `< >` as entities (WeCom's
  `<@userid>` mention and `<font>` tags start with `<`), and an `@` that starts a word (`@all`, `@13800000000`)
  becomes a full-width at sign (U+FF20), so it can never read as a mention. An `@` inside a word (an email
  address) stays.
- Feishu lark_md: HTML numeric entities for the same characters, as Feishu's card documentation prescribes
  (`<at id=all></at>` is its mention).
- JSON: a JSON literal (see the webhook slot).
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime

import markupsafe

from channels_app.templating.slots import MarkupKind
from oncall.lib.text import strip_ansi

_MENTION_AT = re.compile(r"(?<![\w.+-])@")
FULLWIDTH_AT = "\uff20"

_MRKDWN = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_MARKDOWN = str.maketrans(
    {
        "\\": "\\\\",
        "*": "\\*",
        "_": "\\_",
        "`": "\\`",
        "[": "\\[",
        "]": "\\]",
        "~": "\\~",
        "#": "\\#",
        "|": "\\|",
        "<": "&lt;",
        ">": "&gt;",
    }
)
_LARK_MD = str.maketrans(
    {ch: f"&#{ord(ch)};" for ch in "&<>*_`[]~#\\"},
)


def escape_html(text: str) -> str:
    return str(markupsafe.escape(text))


def escape_mrkdwn(text: str) -> str:
    return text.translate(_MRKDWN)


def escape_markdown(text: str) -> str:
    return _MENTION_AT.sub(FULLWIDTH_AT, text.translate(_MARKDOWN))


def escape_lark_md(text: str) -> str:
    return _MENTION_AT.sub("&#64;", text.translate(_LARK_MD))


def json_default(value: object) -> object:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def to_json(value: object, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, default=json_default, indent=indent)


def escape_text(text: str) -> str:
    return text


ESCAPERS = {
    MarkupKind.TEXT: escape_text,
    MarkupKind.HTML: escape_html,
    MarkupKind.MRKDWN: escape_mrkdwn,
    MarkupKind.MARKDOWN: escape_markdown,
    MarkupKind.LARK_MD: escape_lark_md,
    MarkupKind.JSON: to_json,
}


def escape_for(kind: MarkupKind, value: object) -> str:
    """`value` as text that reads literally in `kind` markup (for JSON: a JSON literal of any value)."""
    if kind == MarkupKind.JSON:
        return to_json(value)
    # A colour code from a log line is dropped before escaping, while it can still be recognised (markdown would
    # escape its "["); any other control character becomes a space when the render is tidied.
    return ESCAPERS[kind](strip_ansi(value if isinstance(value, str) else str(value)))
