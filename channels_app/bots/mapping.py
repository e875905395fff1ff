"""User mapping tables as plain data: the IM platforms, what a user id looks like on each, and the CSV format.

A mapping table says, for one IM platform, which user id each person (by email) has there, so a bot can @mention
them. The checks here are pure: the admin, the CSV import and the model validation all call them.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Platform:
    key: str
    label: str
    id_label: str
    pattern: re.Pattern[str]
    example: str

    def check(self, value: str) -> str:
        """Why `value` is not a user id on this platform ("" when it is one)."""
        if not self.pattern.fullmatch(value):
            return str(
                _("%(value)r is not a %(what)s (for example %(example)s)")
                % {"value": value[:80], "what": self.id_label, "example": self.example}
            )
        return ""


_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

PLATFORMS: dict[str, Platform] = {
    p.key: p
    for p in (
        # open_ids are "ou_" and 32 hex digits today; a little slack for other lengths.
        Platform(
            "feishu",
            _("Feishu/Lark"),
            _("Feishu/Lark open_id"),
            re.compile(r"ou_[0-9a-zA-Z]{16,64}"),
            "ou_7d8a6e6df7621556ce0d21922b676706",
        ),
        # WeCom userids: 1 to 64 letters, digits and _ - . @ (the admin console's rule).
        Platform("wecom", _("WeCom"), _("WeCom userid"), re.compile(r"[A-Za-z0-9_.@-]{1,64}"), "zhangsan"),
        Platform(
            "zoom",
            _("Zoom"),
            _("Zoom JID"),
            re.compile(r"[A-Za-z0-9_.-]{1,64}@xmpp\.[A-Za-z0-9.-]+"),
            "kdykjnimt4kpd8kku0ysw@xmpp.zoom.us",
        ),
        # Member ids start with U (or W on Enterprise Grid).
        Platform("slack", _("Slack"), _("Slack member id"), re.compile(r"[UW][A-Z0-9]{6,20}"), "U012AB3CD"),
        Platform("telegram", _("Telegram"), _("Telegram user id"), re.compile(r"[1-9][0-9]{0,15}"), "123456789"),
        # Teams mentions take a UPN (usually the email), an Entra object id, or "8:orgid:<object id>"; "29:…" ids
        # come from bot APIs.
        Platform(
            "teams",
            _("Microsoft Teams"),
            _("Teams user (UPN, Entra object id or 8:orgid: id)"),
            re.compile(rf"[^@\s]+@[^@\s]+\.[^@\s]+|{_GUID}|8:orgid:{_GUID}|29:[A-Za-z0-9_-]{{10,200}}"),
            "jane@contoso.com",
        ),
    )
}


def platform_choices() -> list[tuple[str, str]]:
    return [(key, str(platform.label)) for key, platform in PLATFORMS.items()]


def im_id_check(platform: str, value: str) -> str:
    """Why `value` is not a user id on `platform` ("" when it is)."""
    return PLATFORMS[platform].check(value)


def email_check(value: str) -> str:
    try:
        EmailValidator()(value)
    except ValidationError:
        return str(_("%(value)r is not an email address") % {"value": value[:80]})
    return ""


# -- CSV --------------------------------------------------------------------------------------------------------

CSV_HEADER = ("email", "im_id")
CSV_MAX_ROWS = 20_000


@dataclass(frozen=True)
class CsvRow:
    line: int
    email: str
    im_id: str


class CsvErrors(ValueError):
    """Every problem of a CSV file, each with its line number."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def csv_parse(text: str, *, platform: str) -> list[CsvRow]:
    """Rows `email,im_id` (a header line `email,im_id` is optional; blank lines are skipped), checked for the
    platform. Raises CsvErrors listing every bad line ("line 3: …"), so nothing is imported from a bad file."""
    rows: list[CsvRow] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    for number, fields in enumerate(reader, start=1):
        cells = [cell.strip() for cell in fields]
        if not any(cells):
            continue
        if number == 1 and [cell.lower() for cell in cells[:2]] == list(CSV_HEADER):
            continue
        if len(cells) < 2 or len([cell for cell in cells if cell]) != 2 or not (cells[0] and cells[1]):
            errors.append(str(_("line %(n)d: expected two columns, email and IM user id") % {"n": number}))
            continue
        email, im_id = cells[0], cells[1]
        problem = email_check(email) or im_id_check(platform, im_id)
        if not problem and email.lower() in seen:
            problem = str(_("%(email)s is also on line %(other)d") % {"email": email, "other": seen[email.lower()]})
        if problem:
            errors.append(str(_("line %(n)d: %(problem)s") % {"n": number, "problem": problem}))
            continue
        seen[email.lower()] = number
        rows.append(CsvRow(number, email, im_id))
        if len(rows) > CSV_MAX_ROWS:
            errors.append(str(_("more than %(n)d rows") % {"n": CSV_MAX_ROWS}))
            break
    if errors:
        raise CsvErrors(errors)
    return rows


def csv_write(rows: list[tuple[str, str]]) -> str:
    """The CSV export: the header line, then `email,im_id` per entry."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(rows)
    return out.getvalue()
