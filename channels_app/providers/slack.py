"""Slack incoming webhooks: section blocks of mrkdwn plus a fallback text, @mentions by member id.

Protocol (shared/reference/protocols.md §4): POST the secret webhook URL; HTTP 200 with the body `ok` is success.
404 `no_service`/`channel_not_found`, 410 `channel_is_archived`, 403 and 400 errors are permanent (a revoked
webhook, an archived channel); 429 honours Retry-After; 5xx is retried. A section block holds 3000 characters,
so the rendered text is split at line breaks; `<@U…>` mentions members by the id a mapping table gives.
"""

from __future__ import annotations

from datetime import datetime

from django.utils.translation import gettext_lazy

from channels_app.base import BotMessage, BotProvider, BotTarget, RateLimit, SendResult
from channels_app.providers import chatbot
from channels_app.templating.limits import split_blocks
from channels_app.templating.slots import MarkupKind
from channels_app.templating.slots import slot as template_slot

MAX_BLOCKS = 50  # what Slack takes in one message
SECTION_LIMIT = 3000  # characters of a section block's text


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def mention_pieces(mentions: str) -> list[str]:
    """The mentions in pieces of at most SECTION_LIMIT characters, split between two mentions."""
    pieces: list[str] = []
    current = ""
    for word in mentions.split(" "):
        if current and len(current) + 1 + len(word) > SECTION_LIMIT:
            pieces.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    return [*pieces, current] if current else pieces


def build(bot: BotTarget, message: BotMessage) -> chatbot.Request:
    """The request for one message (pure data): the text in section blocks, then the mentions (capped, so that a
    big team cannot crowd out the incident) in section blocks of their own."""
    ids = list(dict.fromkeys(m.im_id for m in message.mentions if m.im_id))
    mentions = chatbot.mention_suffix([f"<@{member}>" for member in ids], slot="slack")
    mention_blocks = [_section(piece) for piece in mention_pieces(mentions)]
    text = chatbot.fit(message.text, "", slot="slack", limit=template_slot("slack").limit - len(mentions))
    blocks = [_section(piece) for piece in split_blocks(text, SECTION_LIMIT)][: MAX_BLOCKS - len(mention_blocks)]
    fallback = chatbot.title_of(message.context, markup=MarkupKind.MRKDWN) + (f" {mentions}" if mentions else "")
    return chatbot.Request(bot.url, {"text": fallback, "blocks": blocks + mention_blocks})


class SlackBot(BotProvider):
    key = "slack"
    label = gettext_lazy("Slack")
    slot = "slack"
    url_help = gettext_lazy("The incoming webhook: https://hooks.slack.com/services/T…/B…/…")
    mapping_platform = "slack"
    mentions_need_table = True
    mention_help = gettext_lazy("@mentions need a Slack mapping table (email → member id U…).")
    rate_limits = (RateLimit(1, 1),)  # about one message per second

    def send(self, *, bot: BotTarget, message: BotMessage, now: datetime) -> SendResult:
        """Post the blocks; HTTP 2xx is sent, 429 is "too fast" (after Retry-After), 5xx is retried, and 400, 403,
        404 (no_service: the webhook was revoked) and 410 (archived channel) are configuration errors."""
        answer = chatbot.send(build(bot, message))
        return answer if isinstance(answer, SendResult) else chatbot.classify_status(answer, "Slack", rate_wait=30)
