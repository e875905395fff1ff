"""Custom webhooks: the rendered `webhook` slot (by default Flashduty's incident webhook body) POSTed as it is to
any URL, optionally signed, so an in-house gateway can consume incidents.

The body is `{event_id, event_time (ms), event_type, person, incident{…, responders[…]}}` (see
docs/bots.md). With a secret, the header `X-Oncall-Signature: sha256=<hex>` carries HMAC-SHA256(secret, raw body),
as GitHub signs its webhooks; the receiver recomputes it over the bytes it received and compares in constant
time. Every request carries `Idempotency-Key: <event_id>`, the same on every attempt at one message. Any 2xx is
success; 429 waits for Retry-After; 408 and 5xx are retried; other 4xx are permanent.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from django.utils.translation import gettext_lazy

from channels_app.base import BotMessage, BotProvider, BotTarget, RateLimit, SendResult
from channels_app.providers import chatbot

SIGNATURE_HEADER = "X-Oncall-Signature"
# The same on every attempt at one message (its event_id): an attempt whose worker died after the receiver got it is
# sent again, and the receiver can recognise the repeat.
IDEMPOTENCY_HEADER = "Idempotency-Key"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def build(bot: BotTarget, message: BotMessage) -> chatbot.Request:
    """The request for one message (pure data): the rendered JSON, byte for byte as signed, with the message's
    event id as `Idempotency-Key` (the same on every attempt, so a receiver can drop a repeat)."""
    body = message.text.encode("utf-8")
    headers = {SIGNATURE_HEADER: signature(bot.secret, body)} if bot.secret else {}
    event_id = str(message.context.get("event_id") or "")
    if event_id:
        headers[IDEMPOTENCY_HEADER] = event_id
    return chatbot.Request(bot.url, headers=headers, body=body)


class WebhookBot(BotProvider):
    key = "webhook"
    label = gettext_lazy("Custom webhook")
    slot = "webhook"
    url_help = gettext_lazy("Any http(s) URL; it receives a JSON body shaped like Flashduty's incident webhook.")
    secret_label = gettext_lazy("HMAC secret")
    secret_help = gettext_lazy(
        "Optional: each request then carries X-Oncall-Signature: sha256=<hex of HMAC-SHA256(secret, body)>."
    )
    mention_help = gettext_lazy("The body lists the people (responders) with their emails, phones and IM ids.")
    rate_limits = (RateLimit(10, 1),)

    def send(self, *, bot: BotTarget, message: BotMessage, now: datetime) -> SendResult:
        """POST the body; 2xx is sent, 429 waits, 408/5xx are retried, other 4xx are configuration errors."""
        answer = chatbot.send(build(bot, message))
        return answer if isinstance(answer, SendResult) else chatbot.classify_status(answer, "Webhook", rate_wait=30)
