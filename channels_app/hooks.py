"""Provider callbacks under /hooks/: Twilio's TwiML fetch, keypad and status callbacks.

Every Twilio callback must carry X-Twilio-Signature for the PUBLIC URL it was sent to (PUBLIC_URL + path and
query: behind a proxy the request's own Host is not what Twilio signed), made with TWILIO_AUTH_TOKEN, or with
TWILIO_WEBHOOK_SHARED_KEY_SECRET when X-Twilio-Webhooks-Signature-Settings says a Webhook Rule's SharedKey signed
it. A missing or wrong signature, or no secret for it, answers 403 and changes nothing.
"""

from __future__ import annotations

import functools
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from channels_app import keypad
from channels_app.providers import twilio
from oncall.lib import clock

logger = logging.getLogger(__name__)


def twilio_signed(view):
    @csrf_exempt
    @require_POST
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        url = settings.PUBLIC_URL + request.get_full_path()
        signature = request.headers.get("X-Twilio-Signature", "")
        signature_settings = request.headers.get("X-Twilio-Webhooks-Signature-Settings", "")
        refusal = twilio.signature_refusal(url, request.POST, signature, signature_settings)
        if refusal:
            logger.warning("Refused a Twilio callback to %s: %s", request.path.split("/")[3], refusal)
            return HttpResponseForbidden("invalid signature")
        return view(request, *args, **kwargs)

    return wrapper


def _twiml(body: str) -> HttpResponse:
    return HttpResponse(body, content_type="application/xml")


@twilio_signed
def voice_twiml(request: HttpRequest, code: str) -> HttpResponse:
    # Twilio names the call (CallSid) on every request for its script and on every key press.
    again = request.GET.get("again") == "1"
    sid = request.POST.get("CallSid", "")
    return _twiml(keypad.keypad_script(code=code, again=again, sid=sid, now=clock.now()))


@twilio_signed
def voice_gather(request: HttpRequest, code: str) -> HttpResponse:
    digits, sid = request.POST.get("Digits", ""), request.POST.get("CallSid", "")
    return _twiml(keypad.keypad_press(code=code, digits=digits, sid=sid, now=clock.now()))


@twilio_signed
def voice_status(request: HttpRequest, code: str) -> HttpResponse:
    keypad.call_status(
        code=code,
        status=request.POST.get("CallStatus", ""),
        duration=request.POST.get("CallDuration", ""),
        sid=request.POST.get("CallSid", ""),
        now=clock.now(),
    )
    return HttpResponse(status=204)


@twilio_signed
def sms_status(request: HttpRequest, code: str) -> HttpResponse:
    keypad.sms_status(
        code=code,
        status=request.POST.get("MessageStatus", ""),
        error_code=request.POST.get("ErrorCode", ""),
        sid=request.POST.get("MessageSid", ""),
        now=clock.now(),
    )
    return HttpResponse(status=204)
