"""Checking HTML that a service parses strictly: Telegram refuses a message whose HTML it cannot parse (400 "can't
parse entities", permanent), so a body that would produce one is a template failure, found on save and replaced by
the default when sending.

What Telegram's HTML mode takes (protocols.md §6): only its tags, each one closed in order, no `<` that starts no
tag, and some text to show. (A bare `&` or an unknown entity is shown as it is: Telegram's parser is lenient
there, and so is this check.)
"""

from __future__ import annotations

from collections.abc import Collection
from html.parser import HTMLParser

from django.utils.translation import gettext as _


class _Checker(HTMLParser):
    def __init__(self, tags: Collection[str]) -> None:
        super().__init__(convert_charrefs=False)
        self.tags = tags
        self.open: list[str] = []
        self.problems: list[str] = []
        self.visible = False

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag not in self.tags:
            self.problems.append(_("<%(tag)s> is not a supported tag") % {"tag": tag})
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs) -> None:
        self.problems.append(_("<%(tag)s/> is not a supported tag") % {"tag": tag})

    def handle_endtag(self, tag: str) -> None:
        if self.open and self.open[-1] == tag:
            self.open.pop()
        elif self.open:
            self.problems.append(_("</%(tag)s> where </%(open)s> was expected") % {"tag": tag, "open": self.open[-1]})
        else:
            self.problems.append(_("</%(tag)s> closes no open tag") % {"tag": tag})

    def handle_data(self, data: str) -> None:
        self.visible = self.visible or bool(data.strip())
        if "<" in data:  # a "<" that starts no tag: Telegram reads it as a tag and finds none
            self.problems.append(_("a bare < (write &lt;)"))

    def handle_entityref(self, name: str) -> None:
        self.visible = True

    def handle_charref(self, name: str) -> None:
        self.visible = True

    def handle_comment(self, data: str) -> None:
        self.problems.append(_("an HTML comment"))

    def handle_decl(self, decl: str) -> None:
        self.problems.append(_("a declaration <!%(decl)s>") % {"decl": decl[:40]})

    def handle_pi(self, data: str) -> None:
        self.problems.append(_("a processing instruction"))


def html_problem(text: str, tags: Collection[str]) -> str:
    """Why a service that takes only `tags` would refuse `text` as HTML, or "" when it would take it."""
    checker = _Checker(tags)
    checker.feed(text)
    checker.close()
    problems = checker.problems + [_("<%(tag)s> is never closed") % {"tag": tag} for tag in reversed(checker.open)]
    if problems:
        return _("The HTML would be refused: %(problem)s (allowed tags: %(tags)s).") % {
            "problem": problems[0],
            "tags": ", ".join(sorted(tags)),
        }
    if not checker.visible:
        return _("The template rendered nothing.")
    return ""


__all__ = ["html_problem"]
