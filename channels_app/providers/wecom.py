"""WeCom group robot (企业微信群机器人): markdown, @mentions by userid from a mapping table, else by mobile.

Protocol (shared/reference/protocols.md §3): POST `…/cgi-bin/webhook/send?key=K`; the body's `errcode` 0 is
success. Markdown takes `<@userid>` mentions in its content; mentions by mobile number (`mentioned_mobile_list`)
work only in text messages. So a message is the markdown, with `<@userid>` for everyone the mapping table knows,
and, when someone can be reached only by their mobile number, a short text message right after it that carries
`mentioned_mobile_list`. A retry sends only the part that did not go out.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

import phonenumbers
from django.utils.translation import gettext_lazy

from channels_app.base import BotMessage, BotProvider, BotTarget, Mention, Outcome, RateLimit, SendResult
from channels_app.providers import chatbot
from oncall.lib.http import HttpResponse

RATE_LIMITED = {45009}
TRANSIENT = {-1}
CONFIG_HINTS = {
    93000: "invalid webhook URL or key (the robot was removed, or only the key was pasted)",
    40008: "invalid message type",
    44004: "empty content",
    45002: "the content is too long",
    40003: "an unknown userid in the mentions (check the mapping table)",
    46004: "an unknown userid in the mentions (check the mapping table)",
}
RATE_WAIT = 60.0
CODES = chatbot.BodyCodes("WeCom", RATE_LIMITED, RATE_WAIT, TRANSIENT, CONFIG_HINTS)
MARKDOWN_LIMIT = 4096  # bytes of markdown content
TEXT_LIMIT = 2048  # bytes of text content


def mobile(e164: str) -> str:
    """WeCom's mobile numbers: the national number for China (+86), the E.164 form for others."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return str(number.national_number) if number.country_code == 86 else e164


def split_mentions(mentions: tuple[Mention, ...]) -> tuple[list[str], list[str]]:
    """(userids from the mapping table, mobiles of the people it does not know)."""
    userids = list(dict.fromkeys(m.im_id for m in mentions if m.im_id))
    mobiles = list(dict.fromkeys(mobile(m.phone) for m in mentions if m.phone and not m.im_id))
    return userids, mobiles


def build(bot: BotTarget, message: BotMessage) -> dict[str, chatbot.Request]:
    """The requests of one message by part name, in sending order (pure data)."""
    userids, mobiles = split_mentions(message.mentions)
    tags = [f"<@{userid}>" for userid in userids]
    suffix = chatbot.mention_suffix(tags, slot="wecom", limit=MARKDOWN_LIMIT, lead="\n")
    content = chatbot.fit(message.text, suffix, slot="wecom", limit=MARKDOWN_LIMIT)
    parts = {"markdown": chatbot.Request(bot.url, {"msgtype": "markdown", "markdown": {"content": content}})}
    if mobiles:
        title = chatbot.title_of(message.context, 600)
        text = title.encode()[:TEXT_LIMIT].decode("utf-8", "ignore")
        parts["mentions"] = chatbot.Request(
            bot.url, {"msgtype": "text", "text": {"content": text, "mentioned_mobile_list": mobiles}}
        )
    return parts


def classify(response: HttpResponse) -> SendResult:
    """WeCom's answer: the body's errcode decides (never errmsg, which WeCom says may change)."""
    data = response.json()
    if not isinstance(data, dict) or "errcode" not in data:
        return CODES.unreadable(response)
    code = data.get("errcode")
    if code == 0:
        return SendResult.sent(detail=chatbot.detail(response))
    # errmsg may carry the caller's IP and a hint; the code is what counts.
    return CODES.failed(response, code, str(data.get("errmsg", "")).split(",")[0][:200])


class WeComBot(BotProvider):
    key = "wecom"
    label = gettext_lazy("WeCom")
    slot = "wecom"
    url_help = gettext_lazy("The robot's webhook: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…")
    mapping_platform = "wecom"
    mention_help = gettext_lazy(
        "By userid from a WeCom mapping table when one is set (in the markdown); people it does not know are "
        "mentioned by their verified mobile number in a short text message sent right after."
    )
    rate_limits = (RateLimit(20, 61),)  # 20 per minute per robot (failed sends count too)

    def requests_for(self, bot: BotTarget, mentions: tuple[Mention, ...]) -> int:
        return 2 if split_mentions(mentions)[1] else 1

    def send(self, *, bot: BotTarget, message: BotMessage, now: datetime) -> SendResult:
        """Post the markdown, then the mobile-mention text if any; errcode 0 is sent, 45009 is "too fast" (retried
        after a minute), -1 is retried, 93000 and the others are configuration errors."""
        done = list(message.progress.get("done", ()))
        result = SendResult.sent()
        for name, request in build(bot, message).items():
            if name in done:
                continue
            answer = chatbot.send(request)
            result = answer if isinstance(answer, SendResult) else classify(answer)
            if result.outcome != Outcome.SENT:
                break
            done.append(name)
        return dataclasses.replace(result, progress={"done": done})
