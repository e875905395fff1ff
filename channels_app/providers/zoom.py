"""Zoom Team Chat incoming webhooks: `format=full` chatbot content with a verification token.

Protocol (shared/reference/protocols.md §5): POST the endpoint with `?format=full` and the header
`Authorization: <verification token>` (the raw token). HTTP 200 or 204 is success; 401 (bad token) and 404
(unknown webhook) are permanent; 429 and 5xx are retried. Mentions are `<!JID|Name>` in a markdown message item,
with the JID from a Zoom mapping table (best effort: Zoom's documentation of webhook mentions is thin).
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from django.utils.translation import gettext_lazy

from channels_app.base import BotMessage, BotProvider, BotTarget, RateLimit, SendResult
from channels_app.providers import chatbot
from channels_app.templating.filters import severity_color
from channels_app.templating.slots import MarkupKind

HEAD_LIMIT = 250


def endpoint(url: str) -> str:
    """The endpoint with `format=full`, unless the URL names a format itself."""
    if "format" in parse_qs(urlsplit(url).query):
        return url
    return chatbot.with_query(url, "format=full")


def _name(name: str) -> str:
    # A name must not end the mention early.
    return "".join(ch for ch in name if ch not in "|<>") or "?"


def build(bot: BotTarget, message: BotMessage) -> chatbot.Request:
    """The request for one message (pure data)."""
    context = message.context
    incident = context.get("incident") or {}
    color = severity_color("Ok" if incident.get("progress") == "Closed" else incident.get("severity"))
    body = [{"type": "message", "text": message.text, "is_markdown_support": True}]
    mentions = chatbot.mention_suffix(
        list(dict.fromkeys(f"<!{m.im_id}|{_name(m.name)}>" for m in message.mentions if m.im_id)), slot="zoom"
    )  # within MENTIONS_SHARE of the slot's limit, the rest counted: a big team must not swell the message
    if mentions:
        body.append({"type": "message", "text": mentions, "is_markdown_support": True})
    content = {
        "settings": {"default_sidebar_color": color},
        # With is_markdown_support, Zoom renders markdown in the head and sub-head too (protocols.md §5).
        "head": {
            "text": chatbot.title_of(context, HEAD_LIMIT, MarkupKind.MARKDOWN),
            "sub_head": {"text": chatbot.one_line(str(context.get("headline", "")), HEAD_LIMIT, MarkupKind.MARKDOWN)},
        },
        "body": body,
    }
    return chatbot.Request(
        endpoint(bot.url), {"is_markdown_support": True, "content": content}, headers={"Authorization": bot.secret}
    )


class ZoomBot(BotProvider):
    key = "zoom"
    label = gettext_lazy("Zoom")
    slot = "zoom"
    url_help = gettext_lazy(
        "The endpoint /inc connect gave: https://integrations.zoom.us/chat/webhooks/incomingwebhook/… "
        "(format=full is added)."
    )
    secret_label = gettext_lazy("Verification token")
    secret_required = True
    secret_help = gettext_lazy("The verification token /inc connect gave; sent as the Authorization header.")
    mapping_platform = "zoom"
    mentions_need_table = True
    mention_help = gettext_lazy("@mentions need a Zoom mapping table (email → JID).")
    rate_limits = (RateLimit(1, 1),)

    def send(self, *, bot: BotTarget, message: BotMessage, now: datetime) -> SendResult:
        """Post the chatbot content; 2xx is sent, 429 is "too fast", 5xx is retried, 401 (wrong verification
        token), 404 (unknown webhook) and other 4xx are configuration errors."""
        if not bot.secret:
            return SendResult.permanent("Zoom: the bot has no verification token")
        answer = chatbot.send(build(bot, message))
        return answer if isinstance(answer, SendResult) else chatbot.classify_status(answer, "Zoom", rate_wait=30)
