"""Microsoft Teams through a Workflows (Power Automate) webhook: an Adaptive Card with @mentions.

Protocol (shared/reference/protocols.md §7): POST the flow's URL (its `sig` is the secret) a message whose
`attachments` hold one Adaptive Card; any 2xx (usually 202) is success — what the flow does afterwards is not
reported back. A mention is `<at>Name</at>` in a TextBlock plus a matching `msteams.entities` item whose
`mentioned.id` is the person's Teams id from a mapping table, or their email (which is their UPN in most tenants).
"""

from __future__ import annotations

import json
from datetime import datetime

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from channels_app.base import BotMessage, BotProvider, BotTarget, RateLimit, SendResult
from channels_app.providers import chatbot
from channels_app.templating.slots import MarkupKind

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
# What a Workflows webhook takes, the whole message (protocols.md §7: 28 KB).
CARD_LIMIT = 28 * 1024
# What the mentions may take of it (their entities and their texts), and room for "… and N more".
MENTIONS_BUDGET = int(CARD_LIMIT * chatbot.MENTIONS_SHARE)
MORE_RESERVE = 100
COLORS = {"red": "Attention", "orange": "Warning", "yellow": "Warning", "green": "Good"}


def _name(name: str) -> str:
    # The mention text must match the entity's exactly; keep it free of what would end the <at> tag.
    return name.replace("<", "").replace(">", "").strip() or "?"


def build(bot: BotTarget, message: BotMessage) -> chatbot.Request:
    """The request for one message (pure data), its text cut so that the whole card, mentions included, stays
    within what Teams takes (CARD_LIMIT)."""
    text = message.text
    for _attempt in range(4):
        request = _request(bot, message, text)
        over = len(json.dumps(request.json, ensure_ascii=False).encode("utf-8")) - CARD_LIMIT  # as chatbot.send
        if over <= 0 or not text:
            return request
        text = chatbot.fit(text, "", slot="teams", limit=max(len(text.encode("utf-8")) - over, 0))
    return request


def _mentions(message: BotMessage) -> tuple[list[dict], list[str]]:
    """The mention entities and their texts, within MENTIONS_BUDGET bytes of the card; the people left out are
    counted as "… and N more" (a big team must not crowd the incident out of the card, nor push it past 28 KB)."""
    entities, texts = [], []
    seen = set()
    for mention in message.mentions:
        who = mention.im_id or mention.email
        if not who or who in seen:
            continue
        seen.add(who)
        text = f"<at>{_name(mention.name)}</at>"
        texts.append(text)
        entities.append({"type": "mention", "text": text, "mentioned": {"id": who, "name": mention.name}})
    # Each mention takes its entity in the list and its text in the TextBlock, with their separators.
    costs = [
        len(json.dumps(entity, ensure_ascii=False).encode("utf-8")) + len(text.encode("utf-8")) + 3
        for entity, text in zip(entities, texts, strict=True)
    ]
    if sum(costs) <= MENTIONS_BUDGET:
        return entities, texts
    used, kept = MORE_RESERVE, 0
    while used + costs[kept] <= MENTIONS_BUDGET:
        used += costs[kept]
        kept += 1
    return entities[:kept], [*texts[:kept], chatbot.more_marker(len(entities) - kept)]


def _request(bot: BotTarget, message: BotMessage, message_text: str) -> chatbot.Request:
    context = message.context
    entities, texts = _mentions(message)
    body = [
        {
            "type": "TextBlock",
            "text": chatbot.title_of(context, markup=MarkupKind.MARKDOWN),  # a TextBlock renders markdown
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            "color": COLORS.get(chatbot.color_name(context), "Default"),
        },
        {"type": "TextBlock", "text": message_text, "wrap": True},
    ]
    if texts:
        body.append({"type": "TextBlock", "text": " ".join(texts), "wrap": True})
    actions = [{"type": "Action.OpenUrl", "title": _("Open incident"), "url": context["detail_url"]}]
    if (context.get("incident") or {}).get("progress") == "Triggered":
        actions.append({"type": "Action.OpenUrl", "title": _("Acknowledge"), "url": context["ack_url"]})
    card = {
        "$schema": SCHEMA,
        "type": "AdaptiveCard",
        "version": "1.2",
        "body": body,
        "actions": actions,
        "msteams": {"width": "Full", "entities": entities},
    }
    return chatbot.Request(
        bot.url,
        {
            "type": "message",
            "attachments": [
                {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
            ],
        },
    )


class TeamsBot(BotProvider):
    key = "teams"
    label = gettext_lazy("Microsoft Teams")
    slot = "teams"
    url_help = gettext_lazy(
        'The URL of a Workflows flow "Post to a channel when a webhook request is received" '
        "(…logic.azure.com…/invoke?…&sig=… or …powerplatform.com…)."
    )
    mapping_platform = "teams"
    mention_help = gettext_lazy(
        "By the Teams id from a Teams mapping table, else by the person's email (their UPN in most tenants)."
    )
    rate_limits = (RateLimit(4, 1),)

    def send(self, *, bot: BotTarget, message: BotMessage, now: datetime) -> SendResult:
        """Post the card; any 2xx is sent, 429 is "too fast", 5xx is retried, other 4xx (a deleted flow, a wrong
        sig) are configuration errors."""
        answer = chatbot.send(build(bot, message))
        return answer if isinstance(answer, SendResult) else chatbot.classify_status(answer, "Teams", rate_wait=30)
