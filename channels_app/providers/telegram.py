"""Telegram bots: sendMessage in HTML parse mode to one or more chats, @mentions by user id.

Protocol (shared/reference/protocols.md §6): POST `<api>/bot<token>/sendMessage` (the API URL is configurable: a
self-hosted Bot API server works too); `ok: true` is success. 429 carries `parameters.retry_after`; a group that
became a supergroup answers `parameters.migrate_to_chat_id`: the message is sent again to the new id at once and
the bot keeps the new id. "bot was blocked", "kicked", "chat not found" and a wrong token are permanent. Text is
HTML (values escaped by the template) of at most 4096 characters; `<a href="tg://user?id=…">Name</a>` mentions a
person whose user id a mapping table gives.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime

from django.utils.translation import gettext_lazy

from channels_app.base import BotMessage, BotProvider, BotTarget, Outcome, RateLimit, SendResult
from channels_app.providers import chatbot
from channels_app.templating.escaping import escape_html
from oncall.lib.http import HttpResponse

API_URL = "https://api.telegram.org"
TEXT_LIMIT = 4096
_NUMERIC = re.compile(r"-?[0-9]+")


def chat_value(chat_id: str) -> int | str:
    """A numeric chat id as a number, a channel's @username as it is."""
    return int(chat_id) if _NUMERIC.fullmatch(chat_id) else chat_id


def method_url(bot: BotTarget) -> str:
    return f"{(bot.url or API_URL).rstrip('/')}/bot{bot.secret}/sendMessage"


def text_of(message: BotMessage) -> str:
    links = [f'<a href="tg://user?id={m.im_id}">{escape_html(m.name)}</a>' for m in message.mentions if m.im_id]
    suffix = chatbot.mention_suffix(list(dict.fromkeys(links)), slot="telegram", limit=TEXT_LIMIT, lead="\n\n")
    return chatbot.fit(message.text, suffix, slot="telegram", limit=TEXT_LIMIT)


def build(bot: BotTarget, message: BotMessage, chat_id: str) -> chatbot.Request:
    """The request to one chat (pure data)."""
    return chatbot.Request(
        method_url(bot),
        {
            "chat_id": chat_value(chat_id),
            "text": text_of(message),
            "parse_mode": "HTML",
            "disable_web_page_preview": True,
        },
    )


def migrated_to(response: HttpResponse) -> str | None:
    data = response.json()
    parameters = data.get("parameters") if isinstance(data, dict) else None
    new_id = parameters.get("migrate_to_chat_id") if isinstance(parameters, dict) else None
    return str(new_id) if new_id is not None else None


def classify(response: HttpResponse) -> SendResult:
    """Telegram's answer to one sendMessage."""
    info = chatbot.detail(response)
    data = response.json()
    if not isinstance(data, dict) or "ok" not in data:
        if response.status >= 500 or response.status in (408, 429):
            return SendResult.retryable(f"Telegram: HTTP {response.status}", detail=info)
        return SendResult.permanent(f"Telegram: HTTP {response.status}", detail=info)
    if data.get("ok") is True:
        result = data.get("result") if isinstance(data.get("result"), dict) else {}
        return SendResult.sent(str(result.get("message_id", "")), detail=info)
    code = data.get("error_code") or response.status
    error = f"Telegram {code}: {str(data.get('description', ''))[:300]}"
    parameters = data.get("parameters") if isinstance(data.get("parameters"), dict) else {}
    if code == 429:
        wait = parameters.get("retry_after")
        return SendResult.retryable(
            error, retry_after=float(wait) if isinstance(wait, (int, float)) else 30.0, rate_limited=True, detail=info
        )
    if code >= 500:
        return SendResult.retryable(error, detail=info)
    if code in (401, 404):
        error += " (the bot token is wrong or was revoked)"
    # 403 (blocked, kicked, deactivated, group deleted) and 400 (chat not found, bad HTML) cannot improve.
    return SendResult.permanent(error, detail=info)


class TelegramBot(BotProvider):
    key = "telegram"
    label = gettext_lazy("Telegram")
    slot = "telegram"
    url_help = gettext_lazy("The Bot API server; empty: https://api.telegram.org.")
    secret_label = gettext_lazy("Bot token")
    secret_required = True
    secret_help = gettext_lazy("From @BotFather, e.g. 123456:ABC-DEF…")
    fields = ("chat_ids",)
    mapping_platform = "telegram"
    mentions_need_table = True
    mention_help = gettext_lazy("@mentions need a Telegram mapping table (email → numeric user id).")
    # About one message per second per chat and 20 per minute per group.
    rate_limits = (RateLimit(1, 1), RateLimit(20, 61))
    default_url = API_URL

    def send(self, *, bot: BotTarget, message: BotMessage, now: datetime) -> SendResult:
        """Send to every chat not yet reached; a migrated group is sent to again under its new id (the bot keeps
        it). Sent when every chat got it; retried when one may still (429 with retry_after, 5xx); permanent when a
        chat refused for good (blocked, kicked, not found) or the token is wrong."""
        if not bot.secret:
            return SendResult.permanent("Telegram: the bot has no token")
        if not bot.chat_ids:
            return SendResult.permanent("Telegram: the bot has no chat ids")
        done = list(message.progress.get("done", ()))
        failed = dict(message.progress.get("failed", {}))
        chats = list(bot.chat_ids)
        changed = False
        waiting: list[SendResult] = []
        last: SendResult | None = None
        for index, chat_id in enumerate(list(chats)):
            if chat_id in done or chat_id in failed:
                continue
            result = self._send_one(bot, message, chat_id)
            new_id = result.bot_changes.get("migrated_to") if result.bot_changes else None
            if new_id:
                chats[index], changed = new_id, True
                chat_id = new_id
                result = self._send_one(bot, message, chat_id)
            last = result
            if result.outcome == Outcome.SENT:
                done.append(chat_id)
            elif result.outcome == Outcome.RETRYABLE:
                waiting.append(result)
            else:
                failed[chat_id] = result.error[:300]
        progress = {"done": done, "failed": failed}
        changes = {"chat_ids": chats} if changed else {}
        if waiting:
            wait = max((r.retry_after or 0 for r in waiting), default=0) or None
            first = waiting[0]
            return dataclasses.replace(
                first,
                retry_after=wait,
                rate_limited=all(r.rate_limited for r in waiting),
                progress=progress,
                bot_changes=changes,
            )
        if failed:
            error = "; ".join(f"chat {chat}: {reason}" for chat, reason in failed.items())
            info = last.detail if last else {}
            return SendResult.permanent(error, progress=progress, bot_changes=changes, detail=info)
        return SendResult.sent(
            last.provider_id if last else "",
            progress=progress,
            bot_changes=changes,
            detail=last.detail if last else {},
        )

    def _send_one(self, bot: BotTarget, message: BotMessage, chat_id: str) -> SendResult:
        answer = chatbot.send(build(bot, message, chat_id))
        if isinstance(answer, SendResult):
            return answer
        new_id = migrated_to(answer)
        if new_id:
            return SendResult.retryable(
                f"Telegram: chat {chat_id} moved to {new_id}",
                bot_changes={"migrated_to": new_id},
                detail=chatbot.detail(answer),
            )
        return classify(answer)
