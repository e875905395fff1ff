"""Feishu and Lark custom bots (自定义机器人): an interactive card, optional signing in the body, @mentions by
open_id. One kind serves both: the host of the webhook URL (open.feishu.cn or open.larksuite.com) decides.

Protocol (shared/reference/protocols.md §2): POST the hook URL; with a signing secret, `timestamp` (seconds) and
`sign` = base64(HMAC-SHA256(key=timestamp + "\\n" + secret, msg="")) are top-level fields of the JSON body. The
body's `code` 0 is success. In a card's lark_md, `<at id=ou_…></at>` mentions a person by open_id, which a custom
bot cannot look up: it comes from a user mapping table.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from django.utils.translation import gettext_lazy

from channels_app.base import BotMessage, BotProvider, BotTarget, RateLimit, SendResult
from channels_app.providers import chatbot
from oncall.lib.http import HttpResponse

RATE_LIMITED = {11232}
CONFIG_HINTS = {
    19001: "the webhook token is invalid (the bot was removed or the URL is wrong)",
    19021: "the signature does not match: check the signing secret (or the server's clock)",
    19022: "the bot's IP allow-list refused us",
    19024: "a keyword the bot requires is missing",
    9499: "Feishu refused the body (malformed or over 20 KB)",
}
RATE_WAIT = 60.0
CODES = chatbot.BodyCodes("Feishu", RATE_LIMITED, RATE_WAIT, hints=CONFIG_HINTS, server_errors_transient=True)
TEXT_LIMIT = 6000  # the rendered text is cut to 4000 bytes; room for the mentions (the body may be 20 KB)


def sign(secret: str, timestamp_s: str) -> str:
    """base64(HMAC-SHA256(key=timestamp + "\\n" + secret, msg=b"")): unlike DingTalk, the secret is in the key."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def build(bot: BotTarget, message: BotMessage, now: datetime) -> chatbot.Request:
    """The request for one message (pure data)."""
    ids = list(dict.fromkeys(m.im_id for m in message.mentions if m.im_id))
    tags = [f"<at id={open_id}></at>" for open_id in ids]
    suffix = chatbot.mention_suffix(tags, slot="feishu", limit=TEXT_LIMIT, lead="\n")
    text = chatbot.fit(message.text, suffix, slot="feishu", limit=TEXT_LIMIT)
    body: dict = {}
    if bot.secret:
        timestamp = str(int(now.timestamp()))
        body.update(timestamp=timestamp, sign=sign(bot.secret, timestamp))
    body.update(
        msg_type="interactive",
        card={
            "config": {"wide_screen_mode": True},
            "header": {
                "title": {"tag": "plain_text", "content": chatbot.title_of(message.context)},
                "template": chatbot.color_name(message.context),
            },
            "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": text}}],
        },
    )
    return chatbot.Request(bot.url, body)


def classify(response: HttpResponse) -> SendResult:
    """Feishu's answer: the body's `code` (or the legacy StatusCode) decides."""
    data = response.json()
    if not isinstance(data, dict) or not ({"code", "StatusCode"} & set(data)):
        return CODES.unreadable(response)
    code = data.get("code", data.get("StatusCode"))
    if code == 0:
        return SendResult.sent(detail=chatbot.detail(response))
    return CODES.failed(response, code, str(data.get("msg", data.get("StatusMessage", "")))[:300])


class FeishuBot(BotProvider):
    key = "feishu"
    label = gettext_lazy("Feishu / Lark")
    slot = "feishu"
    url_help = gettext_lazy(
        "The bot's webhook: https://open.feishu.cn/open-apis/bot/v2/hook/… (Feishu) or "
        "https://open.larksuite.com/open-apis/bot/v2/hook/… (Lark)."
    )
    secret_label = gettext_lazy("Signing secret (签名校验)")
    secret_help = gettext_lazy("Leave empty when the bot does not sign.")
    mapping_platform = "feishu"
    mentions_need_table = True
    mention_help = gettext_lazy("@mentions need a Feishu/Lark mapping table (email → open_id).")
    # 5 per second and 100 per minute per bot.
    rate_limits = (RateLimit(5, 1), RateLimit(100, 61))

    def send(self, *, bot: BotTarget, message: BotMessage, now: datetime) -> SendResult:
        """Post the card; code 0 is sent, 11232 is "too fast" (retried after a minute), and 19001/19021/19022/
        19024/9499 (token, signature, IP, keyword, body) are configuration errors."""
        answer = chatbot.send(build(bot, message, now))
        return answer if isinstance(answer, SendResult) else classify(answer)
