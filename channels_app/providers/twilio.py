"""Twilio's REST API as the voice and SMS methods use it: form-encoded POSTs with HTTP Basic auth, through
oncall.lib.http, and the classification of every answer and status callback (shared/reference/protocols.md §8).

Only the signature check of callbacks (RequestValidator) and TwiML (twiml.voice_response) come from the twilio
package; requests go through the platform's one HTTP path, so they get its timeouts and address checks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.urls import reverse
from twilio.request_validator import RequestValidator, get_signature_algorithm

from channels_app.base import SendResult
from oncall.lib import http

logger = logging.getLogger(__name__)

# Errors about the recipient's number, on the API answer or an SMS status callback: retrying cannot help and the
# number is flagged (for calls and SMS alike) until the person verifies it again.
NUMBER_ERRORS: dict[int, str] = {
    21211: "invalid 'To' phone number",
    21214: "the number cannot be reached",
    21217: "not a valid phone number",
    30005: "unknown destination handset",
}
# Errors that say only that the number takes no SMS (from us): that SMS fails for good, but the number is not
# flagged, because the flag would also stop every call to it: a desk phone or a landline that cannot get SMS still
# answers calls (protocols.md §8: "permanent; fall back to voice").
# 30004 is the status-callback form of a block: the person replied STOP (21610 when it is known at sending), a
# do-not-disturb registry, carrier filtering. Twilio keeps failing every message to the number until the block is
# lifted, and repeated blocked sends can get the sender filtered, so it is not sent again either.
SMS_REFUSALS: dict[int, str] = {
    21610: "the recipient unsubscribed (replied STOP)",
    21612: "the number cannot be reached by SMS from this sender",
    21614: "not a mobile number",
    30004: "message blocked (the recipient opted out, a do-not-disturb list or carrier filtering)",
    30006: "landline or unreachable carrier",
}
# Delivery errors that may pass (a phone switched off, a busy carrier): worth another attempt.
TEMPORARY_ERRORS = {20429, 30001, 30003, 30008, 30017}
# Twilio refuses the StatusCallback URL we gave it: the same request is made again at once without it (§8).
STATUS_CALLBACK_REFUSED = 21609
NO_STATUS_REPORT = (
    "Twilio refused the status callback URL (error 21609), so it was asked again without it: no status report will come"
)


def missing_settings(*names: str) -> list[str]:
    """The Twilio settings still empty among the account's and `names`."""
    needed = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", *names)
    return [name for name in needed if not getattr(settings, name)]


def callback_url(name: str, code: str, query: str = "") -> str:
    """The public URL of one of our Twilio callbacks for the delivery with callback code `code`."""
    url = settings.PUBLIC_URL + reverse(name, args=[code])
    return f"{url}?{query}" if query else url


def resource_url(resource: str) -> str:
    return f"{settings.TWILIO_API_URL}/2010-04-01/Accounts/{settings.TWILIO_ACCOUNT_SID}/{resource}"


def classify(status: int, body: Any, headers: Mapping[str, str]) -> SendResult:
    """Twilio's answer to creating a call or a message: number errors are permanent and flag the number; SMS
    refusals (SMS_REFUSALS) and configuration errors are permanent without a flag."""
    data = body if isinstance(body, dict) else {}
    if status in (200, 201) and data.get("sid"):
        return SendResult.sent(str(data["sid"]), detail={"status": str(data.get("status", ""))})
    code = data.get("code")
    message = str(data.get("message") or "")[:300]
    error = f"Twilio {status}" + (f" error {code}" if code else "") + (f": {message}" if message else "")
    if status == 429 or code in TEMPORARY_ERRORS:
        return SendResult.retryable(error, retry_after=_retry_after(headers))
    if status >= 500 or status in (200, 201):
        return SendResult.retryable(error)
    if code in NUMBER_ERRORS:
        return SendResult.permanent(error, flag=f"Twilio {code}: {NUMBER_ERRORS[code]}")
    return SendResult.permanent(error)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = {key.lower(): v for key, v in headers.items()}.get("retry-after", "")
    try:
        return float(value)
    except ValueError:
        return None


def post(resource: str, form: Mapping[str, Any]) -> SendResult:
    """POST `form` to Calls.json or Messages.json of the configured account and classify the answer.

    When Twilio refuses the form's StatusCallback URL (21609), the same request is made again at once without the
    StatusCallback fields, so the person is still reached; the result's detail (kept in the delivery's attempt
    log) says that no status report will come about it.
    """
    result, code = _post(resource, form)
    if code != STATUS_CALLBACK_REFUSED or "StatusCallback" not in form:
        return result
    logger.warning(
        "Twilio refused the status callback URL %s (error 21609); check PUBLIC_URL. Sending without it.",
        form["StatusCallback"],
    )
    bare = {name: value for name, value in form.items() if not name.startswith("StatusCallback")}
    result, _ = _post(resource, bare)
    return replace(result, detail={**result.detail, "status_callback": NO_STATUS_REPORT})


def _post(resource: str, form: Mapping[str, Any]) -> tuple[SendResult, Any]:
    """The classified answer, and Twilio's error code when the answer carries one."""
    try:
        response = http.request(
            "POST",
            resource_url(resource),
            data=dict(form),
            auth=(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN),
            headers={"Accept": "application/json"},
        )
    except http.HttpError as exc:
        if exc.permanent:  # TWILIO_API_URL is not a URL a request can be made to: nothing was sent
            return SendResult.permanent(f"Twilio: {exc}"), None
        # unanswered: no answer came, which does not mean Twilio lacks the message. A connection reset after the
        # request went is as likely as a timeout to hide a call Twilio placed, and we cannot tell the two from a
        # request that never left. A callback about the attempt settles it (outcomes.delivery_report): it can only
        # come from Twilio having the message, so trusting it is safe, and the retry then does not page twice.
        return SendResult.retryable(f"Twilio: {exc}", detail={"unanswered": True}), None
    body = response.json()
    code = body.get("code") if isinstance(body, dict) else None
    return classify(response.status, body, response.headers), code


# Statuses that say only that Twilio has the message or call: they settle an attempt whose worker died before
# recording Twilio's answer (it is not sent again), and change nothing else.
SMS_ACCEPTED = ("queued", "accepted", "scheduled", "sending", "sent", "partially_delivered")
CALL_ACCEPTED = ("queued", "initiated", "ringing", "in-progress")


def sms_status_report(status: str, error_code: str) -> tuple[str, str, str] | None:
    """What an SMS status callback means for the delivery: (kind, reason, flag), or None for a status that is not
    about an outgoing message.

    kind is "accepted" (Twilio has it, nothing more yet), "delivered", "not_reached" (a temporary error: sent
    again) or "refused" (never will be; with a flag when the number itself is at fault, none when it only takes
    no SMS).
    """
    if status in SMS_ACCEPTED:
        return ("accepted", f"SMS {status}", "")
    if status in ("delivered", "read"):
        return ("delivered", status, "")
    if status not in ("failed", "undelivered", "canceled"):
        return None
    try:
        code = int(error_code)
    except (TypeError, ValueError):
        code = 0
    meaning = NUMBER_ERRORS.get(code) or SMS_REFUSALS.get(code, "see Twilio")
    reason = f"SMS {status}" + (f" (Twilio error {code}: {meaning})" if code else "")
    if code in NUMBER_ERRORS:
        return ("refused", reason, f"Twilio {code}: {NUMBER_ERRORS[code]}")
    if code in TEMPORARY_ERRORS:
        return ("not_reached", reason, "")
    return ("refused", reason, "")


def call_status_report(status: str) -> tuple[str, str] | None:
    """What a call status callback means: queued, initiated, ringing and in-progress say Twilio has the call
    (accepted); completed is delivered; busy, no-answer, failed and canceled are not reached (the person is called
    again after the backoff); anything else means nothing (None)."""
    if status in CALL_ACCEPTED:
        return ("accepted", f"call {status}")
    if status == "completed":
        return ("delivered", "call completed")
    if status in ("busy", "no-answer", "failed", "canceled"):
        return ("not_reached", f"call {status}")
    return None


def signature_refusal(url: str, params: Any, signature: str, signature_settings: str = "") -> str:
    """Why a callback is not Twilio's ("" when it is): it must carry Twilio's signature for `url` (the public URL it
    was sent to) and `params`.

    By default Twilio signs with TWILIO_AUTH_TOKEN and HMAC-SHA1. When a Webhook Rule applies to the URL, it signs
    with the rule's SharedKey secret instead and names the algorithm in `signature_settings` (the
    X-Twilio-Webhooks-Signature-Settings header, `key=<id>,algorithm=HMAC_SHA256`): that is checked with
    TWILIO_WEBHOOK_SHARED_KEY_SECRET. Fails closed: without the secret the signature needs, nothing is valid. The
    reason names settings, never their values.
    """
    name = "TWILIO_WEBHOOK_SHARED_KEY_SECRET" if signature_settings else "TWILIO_AUTH_TOKEN"
    secret = getattr(settings, name)
    if not secret and signature_settings:
        return f"it is signed with a Webhook SharedKey (X-Twilio-Webhooks-Signature-Settings) and {name} is not set"
    if not secret:
        return f"{name} is not set"
    if not signature:
        return "no X-Twilio-Signature"
    algorithm = get_signature_algorithm(signature_settings)
    if not RequestValidator(secret).validate(url, params, signature, algorithm=algorithm):
        return f"bad signature for {name}"
    return ""
