"""DingTalk custom group robot (钉钉自定义机器人): markdown or actionCard, optional signing, @mentions by phone.

Protocol (shared/reference/protocols.md §1): POST the webhook URL (`…/robot/send?access_token=T`); with a signing
secret, `timestamp` (ms) and `sign` = urlencode(base64(HMAC-SHA256(secret, timestamp + "\\n" + secret))) go in the
query string, encoded once. DingTalk answers HTTP 200 even on errors: `errcode` 0 is success. A person is
@mentioned by putting their mobile number in `at.atMobiles` and `@<mobile>` in the text (markdown only); DingTalk
notifies only the atMobiles whose @mobile is in the text, so the list holds exactly the mentions that fit.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from urllib.parse import quote

import phonenumbers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from channels_app.base import BotMessage, BotProvider, BotTarget, Mention, RateLimit, SendResult
from channels_app.providers import chatbot
from oncall.lib.http import HttpResponse

RATE_LIMITED = {130101: "sent too fast (20 messages per minute)", 410100: "sent too fast (rate limited)"}
TRANSIENT = {-1: "DingTalk is busy"}
# Everything else that is not 0 is permanent; these say what to fix.
CONFIG_HINTS = {
    310000: "the robot's security settings refused it: a keyword missing, a wrong signing secret or an IP "
    "allow-list (see errmsg)",
    300001: "the access_token does not exist (the robot was removed or the URL is wrong)",
    300005: "the access_token does not exist (the robot was removed or the URL is wrong)",
    400101: "the access_token does not exist (the robot was removed or the URL is wrong)",
    400102: "the robot is stopped",
    400106: "the robot does not exist",
    400013: "the group was dissolved",
    400105: "unsupported message type",
    460101: "the message is too long",
}
RATE_WAIT = 60.0  # DingTalk: "retry after at least 60 s"
CODES = chatbot.BodyCodes("DingTalk", RATE_LIMITED, RATE_WAIT, TRANSIENT, CONFIG_HINTS)
TEXT_LIMIT = 6000  # the rendered text is cut to 4000 bytes; room for the @mentions (DingTalk takes 20000)


def sign(secret: str, timestamp_ms: str) -> str:
    """The signature before URL-encoding: base64(HMAC-SHA256(key=secret, msg=timestamp + "\\n" + secret))."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signed_url(url: str, secret: str, now: datetime) -> str:
    if not secret:
        return url
    timestamp = str(int(now.timestamp() * 1000))
    return chatbot.with_query(url, f"timestamp={timestamp}&sign={quote(sign(secret, timestamp), safe='')}")


def mobile(e164: str) -> str:
    """How DingTalk knows a phone number: the national number for China (+86), `+<country code>-<number>` for
    others (as DingTalk shows international numbers)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164.lstrip("+")
    national = str(number.national_number)
    return national if number.country_code == 86 else f"+{number.country_code}-{national}"


def mention_mobiles(mentions: tuple[Mention, ...]) -> list[str]:
    return list(dict.fromkeys(mobile(m.phone) for m in mentions if m.phone))


def build(bot: BotTarget, message: BotMessage, now: datetime) -> chatbot.Request:
    """The request for one message (pure data)."""
    context = message.context
    title = chatbot.title_of(context, 100)
    url = signed_url(bot.url, bot.secret, now)
    if bot.message_format == "action_card":
        buttons = [{"title": _("Details"), "actionURL": context["detail_url"]}]
        if (context.get("incident") or {}).get("progress") == "Triggered":
            buttons.append({"title": _("Acknowledge"), "actionURL": context["ack_url"]})
        card = {"title": title, "text": message.text, "btnOrientation": "1", "btns": buttons}
        return chatbot.Request(url, {"msgtype": "actionCard", "actionCard": card})
    mobiles = mention_mobiles(message.mentions)
    suffix = chatbot.mention_suffix([f"@{m}" for m in mobiles], slot="dingtalk", limit=TEXT_LIMIT, lead="\n\n")
    text = chatbot.fit(message.text, suffix, slot="dingtalk", limit=TEXT_LIMIT)
    # DingTalk notifies only the atMobiles whose @mobile is in the text: the ones left out of a big team's capped
    # list would not be notified anyway, and listing them all could take the message past its 20000 bytes.
    shown = set(suffix.split())
    return chatbot.Request(
        url,
        {
            "msgtype": "markdown",
            "markdown": {"title": title, "text": text},
            "at": {"atMobiles": [m for m in mobiles if f"@{m}" in shown], "isAtAll": bot.at_all},
        },
    )


def classify(response: HttpResponse) -> SendResult:
    """DingTalk's answer: the body's errcode decides, whatever the HTTP status."""
    data = response.json()
    if not isinstance(data, dict) or "errcode" not in data:
        return CODES.unreadable(response)
    code = data.get("errcode")
    if code == 0:
        return SendResult.sent(detail=chatbot.detail(response))
    return CODES.failed(response, code, str(data.get("errmsg", ""))[:300])


class DingTalkBot(BotProvider):
    key = "dingtalk"
    label = gettext_lazy("DingTalk")
    slot = "dingtalk"
    url_help = gettext_lazy("The robot's webhook, e.g. https://oapi.dingtalk.com/robot/send?access_token=…")
    secret_label = gettext_lazy("Signing secret (加签)")
    secret_help = gettext_lazy("Starts with SEC; leave empty when the robot does not sign (keywords or IPs only).")
    fields = ("message_format", "at_all")
    mention_help = gettext_lazy("By the people's verified mobile numbers (markdown only); no table needed.")
    # 20 per minute per robot; a second of margin for the clocks (going over mutes the robot for minutes).
    rate_limits = (RateLimit(20, 61),)

    def send(self, *, bot: BotTarget, message: BotMessage, now: datetime) -> SendResult:
        """Post the markdown (with @mobiles) or actionCard; errcode 0 is sent, 130101/410100 are "too fast"
        (retried after a minute), -1 is retried, anything else (signature, keywords, token, stopped robot) is a
        configuration error."""
        answer = chatbot.send(build(bot, message, now))
        return answer if isinstance(answer, SendResult) else classify(answer)
