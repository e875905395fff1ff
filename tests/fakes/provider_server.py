"""A fake of every provider the platform talks to, on 127.0.0.1, speaking each one's real protocol.

One threaded HTTP server; each provider lives under a path prefix, so a test points a provider's base URL setting
(or a bot's webhook URL) at `server.url("/dingtalk")` and so on. The server checks what the real one checks
(credentials, signatures, tokens), answers with the real success and error bodies, records every request, and can
be told to fail, delay or rate-limit (against its `now` clock, which a test may bind to its fake clock):

    server.fail_next("/dingtalk", status=200, json={"errcode": 130101, "errmsg": "send too fast"})
    server.delay("/slack", 3.0)
    server.hang("/hook")  # no answer at all until server.release("/hook")
    server.drop_next("/twilio")  # handled (Twilio has the call), then the connection closes without an answer
    server.twilio_status_callbacks["Messages.json"] = ["queued"]  # Twilio calls back (signed) before it answers

| prefix | speaks |
|---|---|
| /twilio | Twilio REST 2010-04-01: Calls.json and Messages.json (form-encoded, HTTP Basic) |
| /fcm | FCM HTTP v1 messages:send (Bearer token); /fcm/token mints tokens for a signed service-account JWT |
| /webpush | a Web Push endpoint (201; VAPID, aes128gcm checked when a VAPID key is set; 410 once gone; 413 over 4 KB) |
| /postmark | Postmark's send API, as django-anymail's Postmark backend calls it (X-Postmark-Server-Token) |
| /dingtalk | DingTalk robot send (access_token; timestamp+sign checked when the token has a secret) |
| /feishu | Feishu/Lark bot hook (sign checked in the body when the token has a secret) |
| /wecom | WeCom group robot (key) |
| /slack | Slack incoming webhook (plain-text "ok"; invalid_blocks past 50 blocks or 3000 characters a section) |
| /zoom | Zoom incoming webhook (Authorization: verification token, format=full) |
| /telegram | Telegram Bot API sendMessage (HTML parse mode: Telegram's tags only, each closed in order) |
| /teams | Teams Workflows webhook (202; 404 for a flow not in `teams_flows` once any is registered) |
| /hook | a custom webhook (HMAC-SHA256 signature header checked when configured) |

Run it alone for local demos: `python -m tests.fakes.provider_server --port 8025`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
import requests
from py_vapid import Vapid

from tests.fakes.provider_rules import dingtalk_sign, feishu_sign, telegram_entities_error
from tests.fakes.twilio_signature import SharedKey, twilio_signature_headers


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    received_at: float

    @property
    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode("utf-8"), keep_blank_values=True)

    def field(self, name: str) -> str | None:
        values = self.form.get(name)
        return values[0] if values else None


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_json(cls, status: int, data, headers: dict | None = None) -> Answer:
        return cls(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def of_text(cls, status: int, text: str) -> Answer:
        return cls(status, text.encode(), {"Content-Type": "text/plain"})


@dataclass
class _Scripted:
    prefix: str
    answer: Answer
    times: int
    delay: float


class ProviderServer:
    """The fake providers. Configure credentials on the attributes below before sending."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[Recorded] = []
        self.twilio_accounts: dict[str, str] = {}  # account sid -> auth token
        # Resource ("Messages.json", "Calls.json") -> statuses Twilio posts, signed, to the StatusCallback of each
        # message or call it accepts, before it answers the request (so even when the answer hangs or is lost).
        self.twilio_status_callbacks: dict[str, list[str]] = {}
        self.twilio_shared_key: SharedKey | None = None  # a Webhook Rule's key: it signs them instead of the token
        self.callbacks_made: list[tuple[str, str, int]] = []  # (url, status, HTTP status of our answer)
        self.fcm_access_tokens: set[str] = set()
        self.fcm_service_accounts: dict[str, str] = {}  # client_email -> public key PEM (checks the assertion)
        self.fcm_unregistered: set[str] = set()  # registration tokens FCM answers UNREGISTERED for
        self.webpush_vapid_key: str | None = None  # base64url VAPID public key the endpoint requires
        self.webpush_gone: set[str] = set()  # subscription ids answered 410 Gone
        self.postmark_tokens: set[str] = set()
        self.postmark_inactive: set[str] = set()  # recipients Postmark refuses (ErrorCode 406)
        self.dingtalk_tokens: dict[str, str | None] = {}  # access_token -> signing secret (None: no signing)
        self.dingtalk_keywords: dict[str, list[str]] = {}  # access_token -> required keywords
        self.dingtalk_stopped: set[str] = set()  # access tokens of robots that were stopped (400102)
        self.feishu_tokens: dict[str, str | None] = {}
        self.feishu_keywords: dict[str, list[str]] = {}  # hook token -> required keywords (19024)
        self.wecom_keys: set[str] = set()
        self.slack_hooks: set[str] = set()  # path after /slack
        self.slack_archived: set[str] = set()  # hooks whose channel was archived (410)
        self.zoom_tokens: dict[str, str] = {}  # webhook id -> verification token
        self.telegram_bots: set[str] = set()  # bot tokens
        self.telegram_migrations: dict[str, int] = {}  # old chat id -> new chat id
        self.telegram_gone: dict[str, str] = {}  # chat id -> why it cannot be reached (403/400 description)
        self.teams_flows: set[str] = set()  # flow ids (the path after /teams/); empty: every flow exists
        self.webhook_secrets: dict[str, str] = {}  # hook id -> HMAC secret
        # The clock for signature freshness and rate limits (Unix seconds); a test may bind it to its fake clock.
        self.now: Callable[[], float] = time.time
        self.rate_limits: dict[str, tuple[int, float]] = {}  # prefix -> (max requests, per seconds)
        self._scripted: list[_Scripted] = []
        self._token_numbers = itertools.count(1)
        self._delays: dict[str, float] = {}
        self._drops: dict[str, int] = {}  # prefix -> how many more requests are dropped after being handled
        self._hangs: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- lifecycle and scripting -------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> ProviderServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._scripted.clear()
            self._delays.clear()
            self._drops.clear()
            self.rate_limits.clear()
            self.twilio_status_callbacks.clear()
            self.twilio_shared_key = None
            self.callbacks_made.clear()
        self.release()
        self.now = time.time
        for registry in (
            self.twilio_accounts,
            self.dingtalk_tokens,
            self.dingtalk_keywords,
            self.feishu_tokens,
            self.feishu_keywords,
            self.telegram_gone,
            self.zoom_tokens,
            self.telegram_migrations,
            self.webhook_secrets,
        ):
            registry.clear()
        for collection in (
            self.fcm_access_tokens,
            self.fcm_unregistered,
            self.webpush_gone,
            self.postmark_tokens,
            self.postmark_inactive,
            self.wecom_keys,
            self.slack_hooks,
            self.slack_archived,
            self.telegram_bots,
            self.teams_flows,
            self.dingtalk_stopped,
        ):
            collection.clear()
        self.fcm_service_accounts.clear()
        self.webpush_vapid_key = None

    def fail_next(
        self,
        prefix: str,
        *,
        status: int,
        json=None,
        text: str | None = None,
        headers: dict | None = None,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        """The next `times` requests under `prefix` get this answer (after `delay` seconds) instead of success."""
        if json is not None:
            answer = Answer.of_json(status, json, headers)
        else:
            answer = Answer(status, (text or "").encode(), {"Content-Type": "text/plain", **(headers or {})})
        with self._lock:
            self._scripted.append(_Scripted(prefix, answer, times, delay))

    def delay(self, prefix: str, seconds: float) -> None:
        """Every request under `prefix` waits `seconds` before it is answered (a slow or hanging provider)."""
        with self._lock:
            self._delays[prefix] = seconds

    def drop_next(self, prefix: str, *, times: int = 1) -> None:
        """The next `times` requests under `prefix` are read and handled as usual (the provider has the message),
        then the connection is closed without an answer: the client sees a reset, not a timeout."""
        with self._lock:
            self._drops[prefix] = self._drops.get(prefix, 0) + times

    def hang(self, prefix: str) -> None:
        """Requests under `prefix` get no answer until `release(prefix)` (a provider that hangs); they are recorded
        when they arrive."""
        with self._lock:
            self._hangs.setdefault(prefix, threading.Event())

    def release(self, prefix: str | None = None) -> None:
        """Answer the requests hanging under `prefix` (every prefix when None), and stop hanging new ones."""
        with self._lock:
            gates = [self._hangs.pop(p) for p in list(self._hangs) if prefix is None or p == prefix]
        for gate in gates:
            gate.set()

    def received(self, prefix: str = "") -> list[Recorded]:
        with self._lock:
            return [request for request in self.requests if request.path.startswith(prefix)]

    def wait_for(self, prefix: str, count: int = 1, timeout: float = 10.0) -> list[Recorded]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.received(prefix)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"expected {count} request(s) under {prefix}, got {len(self.received(prefix))}")

    # -- dispatch ----------------------------------------------------------------------------------------------

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Answers leave in one write, as real providers' do: written unbuffered, an answer's body waited for
            # the client's delayed ACK on a keep-alive connection, 40 ms a request.
            wbufsize = -1

            def do_POST(self):
                server._handle(self)

            def do_GET(self):
                server._handle(self)

            def log_message(self, *args):
                pass

        return Handler

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        request = Recorded(
            method=handler.command,
            path=unquote(parts.path),
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={key.lower(): value for key, value in handler.headers.items()},
            body=body,
            received_at=self.now(),
        )
        with self._lock:
            self.requests.append(request)
            scripted = next((s for s in self._scripted if request.path.startswith(s.prefix)), None)
            if scripted:
                scripted.times -= 1
                if scripted.times <= 0:
                    self._scripted.remove(scripted)
            delay = next((d for p, d in self._delays.items() if request.path.startswith(p)), 0.0)
            gate = next((g for p, g in self._hangs.items() if request.path.startswith(p)), None)
            dropped = next((p for p in self._drops if request.path.startswith(p)), None)
            if dropped is not None:
                self._drops[dropped] -= 1
                if self._drops[dropped] <= 0:
                    del self._drops[dropped]
            calls_back = not scripted and request.path.startswith("/twilio/") and bool(self.twilio_status_callbacks)
        answer = None
        if calls_back:
            answer = self._rate_limited(request) or self._route(request)
            self._twilio_call_back(request, answer)
        if gate is not None:
            gate.wait()
        if delay:
            time.sleep(delay)
        if scripted:
            if scripted.delay:
                time.sleep(scripted.delay)
            answer = scripted.answer
        elif answer is None:
            answer = self._rate_limited(request) or self._route(request)
        if dropped is not None:
            handler.close_connection = True  # the answer is lost on the way back
            return
        try:
            handler.send_response(answer.status)
            for key, value in {"Content-Length": str(len(answer.body)), **answer.headers}.items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(answer.body)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def _rate_limited(self, request: Recorded) -> Answer | None:
        for prefix, (limit, per) in self.rate_limits.items():
            if not request.path.startswith(prefix):
                continue
            with self._lock:
                recent = [
                    r for r in self.requests if r.path.startswith(prefix) and r.received_at > request.received_at - per
                ]
            if len(recent) > limit:
                return self._throttle_answer(prefix, per)
        return None

    def _throttle_answer(self, prefix: str, per: float) -> Answer:
        answers: dict[str, Callable[[], Answer]] = {
            "/dingtalk": lambda: Answer.of_json(
                200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}
            ),
            "/feishu": lambda: Answer.of_json(
                200, {"code": 11232, "msg": "frequency limited psm[lark.oapi.app_platform_runtime]appID[1]"}
            ),
            "/wecom": lambda: Answer.of_json(200, {"errcode": 45009, "errmsg": "api freq out of limit"}),
            "/telegram": lambda: Answer.of_json(
                429,
                {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {int(per)}",
                    "parameters": {"retry_after": int(per)},
                },
            ),
            "/twilio": lambda: Answer.of_json(429, {"code": 20429, "message": "Too Many Requests", "status": 429}),
        }
        return answers.get(prefix, lambda: Answer(429, b"", {"Retry-After": str(int(per))}))()

    def _route(self, request: Recorded) -> Answer:
        for prefix, handler in (
            ("/twilio/", self._twilio),
            ("/fcm/token", self._fcm_token),
            ("/fcm/", self._fcm),
            ("/webpush/", self._webpush),
            ("/postmark/", self._postmark),
            ("/dingtalk/", self._dingtalk),
            ("/feishu/", self._feishu),
            ("/wecom/", self._wecom),
            ("/slack/", self._slack),
            ("/zoom/", self._zoom),
            ("/telegram/", self._telegram),
            ("/teams/", self._teams),
            ("/hook/", self._hook),
        ):
            if request.path.startswith(prefix):
                return handler(request)
        return Answer.of_text(404, "no such fake provider")

    # -- providers -------------------------------------------------------------------------------------------

    def _twilio(self, request: Recorded) -> Answer:
        # /twilio/2010-04-01/Accounts/{AccountSid}/Calls.json or Messages.json
        parts = request.path.split("/")
        if len(parts) < 6 or parts[3] != "Accounts":
            return Answer.of_json(
                404, {"code": 20404, "message": "The requested resource was not found", "status": 404}
            )
        sid, resource = parts[4], parts[5]
        auth = request.headers.get("authorization", "")
        expected = "Basic " + base64.b64encode(f"{sid}:{self.twilio_accounts.get(sid, '')}".encode()).decode()
        if sid not in self.twilio_accounts or not hmac.compare_digest(auth, expected):
            return Answer.of_json(401, {"code": 20003, "message": "Authenticate", "status": 401})
        to = request.field("To") or ""
        if not to.startswith("+") or not to[1:].isdigit():
            return Answer.of_json(
                400, {"code": 21211, "message": f"The 'To' number {to} is not a valid phone number.", "status": 400}
            )
        if resource == "Calls.json":
            if not (request.field("Url") or request.field("Twiml")):
                return Answer.of_json(400, {"code": 21205, "message": "Url parameter is required.", "status": 400})
            return Answer.of_json(201, {"sid": "CA" + uuid.uuid4().hex, "status": "queued", "to": to})
        if resource == "Messages.json":
            if not request.field("Body"):
                return Answer.of_json(400, {"code": 21602, "message": "Message body is required.", "status": 400})
            return Answer.of_json(201, {"sid": "SM" + uuid.uuid4().hex, "status": "queued", "to": to})
        return Answer.of_json(404, {"code": 20404, "message": "The requested resource was not found", "status": 404})

    def _twilio_call_back(self, request: Recorded, answer: Answer) -> None:
        """Post the configured status callbacks about the message or call `answer` accepted, signed as Twilio signs
        them (X-Twilio-Signature over the callback URL and the form; with `twilio_shared_key` when set)."""
        if answer.status != 201:
            return
        parts = request.path.split("/")
        account, resource = parts[4], parts[5]
        url = request.field("StatusCallback") or ""
        statuses = self.twilio_status_callbacks.get(resource, [])
        if not url or not statuses:
            return
        sid = json.loads(answer.body)["sid"]
        sid_field, status_field = (
            ("CallSid", "CallStatus") if resource == "Calls.json" else ("MessageSid", "MessageStatus")
        )
        for status in statuses:
            params = {
                "AccountSid": account,
                sid_field: sid,
                status_field: status,
                "To": request.field("To") or "",
                "From": request.field("From") or "",
            }
            token, shared_key = self.twilio_accounts[account], self.twilio_shared_key
            headers = twilio_signature_headers(url, params, token=token, shared_key=shared_key)
            try:
                code = requests.post(url, data=params, headers=headers, timeout=10).status_code
            except requests.RequestException:
                code = 0
            with self._lock:
                self.callbacks_made.append((url, status, code))

    def _fcm(self, request: Recorded) -> Answer:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.fcm_access_tokens:
            return Answer.of_json(
                401,
                {
                    "error": {
                        "code": 401,
                        "message": "Request had invalid authentication credentials.",
                        "status": "UNAUTHENTICATED",
                    }
                },
            )
        message = (request.json or {}).get("message") or {}
        if not message.get("token"):
            return Answer.of_json(
                400, {"error": {"code": 400, "message": "Invalid request", "status": "INVALID_ARGUMENT"}}
            )
        if message["token"] in self.fcm_unregistered:
            return Answer.of_json(
                404,
                {
                    "error": {
                        "code": 404,
                        "message": "Requested entity was not found.",
                        "status": "NOT_FOUND",
                        "details": [
                            {
                                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                "errorCode": "UNREGISTERED",
                            }
                        ],
                    }
                },
            )
        project = request.path.split("/")[4] if len(request.path.split("/")) > 4 else "project"
        return Answer.of_json(200, {"name": f"projects/{project}/messages/0:{uuid.uuid4().hex}"})

    def _fcm_token(self, request: Recorded) -> Answer:
        # Google's OAuth2 token endpoint for a service account's signed JWT (RFC 7523).
        form = {key: values[0] for key, values in request.form.items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Answer.of_json(400, {"error": "unsupported_grant_type"})
        assertion = form.get("assertion", "")
        try:
            issuer = jwt.decode(assertion, options={"verify_signature": False}).get("iss", "")
            claims = jwt.decode(
                assertion,
                self.fcm_service_accounts.get(issuer, ""),
                algorithms=["RS256"],
                audience=self.url("/fcm/token"),
            )
        except (jwt.PyJWTError, ValueError):
            return Answer.of_json(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        if claims.get("scope") != "https://www.googleapis.com/auth/firebase.messaging":
            return Answer.of_json(400, {"error": "invalid_scope"})
        token = f"ya29.fake-{next(self._token_numbers)}"
        self.fcm_access_tokens.add(token)
        return Answer.of_json(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _webpush(self, request: Recorded) -> Answer:
        subscription = request.path.rsplit("/", 1)[-1]
        if subscription in self.webpush_gone:
            return Answer.of_text(410, "push subscription has unsubscribed or expired.")
        if self.webpush_vapid_key:
            auth = request.headers.get("authorization", "")
            try:
                scheme, _, rest = auth.partition(" ")
                parts = dict(item.split("=", 1) for item in rest.split(","))
                valid = scheme == "vapid" and parts.get("k") == self.webpush_vapid_key and Vapid.verify(auth)
            except (ValueError, KeyError, IndexError, AssertionError, TypeError):
                valid = False
            if not valid:
                return Answer.of_text(401, "VAPID authorization failed")
            if request.headers.get("content-encoding") != "aes128gcm" or "ttl" not in request.headers:
                return Answer.of_text(400, "missing Content-Encoding aes128gcm or TTL")
        if len(request.body) > 4096:  # push services take an encrypted record of about 4 KB
            return Answer.of_text(413, "Payload Too Large")
        return Answer(201, b"", {"Location": f"{self.url('/webpush/messages/')}{uuid.uuid4().hex}"})

    def _postmark(self, request: Recorded) -> Answer:
        if request.headers.get("x-postmark-server-token", "") not in self.postmark_tokens:
            return Answer.of_json(401, {"ErrorCode": 10, "Message": "Bad or missing Server API token."})
        data = request.json or {}
        to = str(data.get("To", ""))
        if to in self.postmark_inactive:
            return Answer.of_json(
                422,
                {
                    "ErrorCode": 406,
                    "Message": "You tried to send to recipient(s) that have been marked as inactive. "
                    f"Found inactive addresses: {to}. Inactive recipients are ones that have generated "
                    "a hard bounce, a spam complaint, or a manual suppression.",
                },
            )
        return Answer.of_json(
            200,
            {
                "To": to,
                "SubmittedAt": "2026-03-02T09:00:00Z",
                "MessageID": str(uuid.uuid4()),
                "ErrorCode": 0,
                "Message": "OK",
            },
        )

    def _dingtalk(self, request: Recorded) -> Answer:
        token = (request.query.get("access_token") or [""])[0]
        if token not in self.dingtalk_tokens:
            return Answer.of_json(200, {"errcode": 300001, "errmsg": "token is not exist"})
        if token in self.dingtalk_stopped:
            return Answer.of_json(200, {"errcode": 400102, "errmsg": "robot stopped"})
        secret = self.dingtalk_tokens[token]
        if secret:
            timestamp = (request.query.get("timestamp") or [""])[0]
            sign = (request.query.get("sign") or [""])[0]  # parse_qs has URL-decoded it once
            fresh = timestamp.isdigit() and abs(int(timestamp) / 1000 - self.now()) < 3600
            if not fresh or not hmac.compare_digest(sign, dingtalk_sign(timestamp, secret)):
                return Answer.of_json(
                    200,
                    {
                        "errcode": 310000,
                        "errmsg": "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]",
                    },
                )
        data = request.json
        if not isinstance(data, dict) or data.get("msgtype") not in (
            "text",
            "markdown",
            "actionCard",
            "link",
            "feedCard",
        ):
            return Answer.of_json(200, {"errcode": 400105, "errmsg": "不支持的消息类型"})
        keywords = self.dingtalk_keywords.get(token)
        if keywords and not any(word in request.body.decode("utf-8") for word in keywords):
            return Answer.of_json(200, {"errcode": 310000, "errmsg": "keywords not in content"})
        if len(request.body) > 20000:
            return Answer.of_json(200, {"errcode": 460101, "errmsg": "message too long, exceed 20000 bytes"})
        return Answer.of_json(200, {"errcode": 0, "errmsg": "ok"})

    def _feishu(self, request: Recorded) -> Answer:
        token = request.path.rsplit("/", 1)[-1]
        if token not in self.feishu_tokens:
            return Answer.of_json(200, {"code": 19001, "msg": "param invalid: incoming webhook access token invalid"})
        data = request.json
        if not isinstance(data, dict) or "msg_type" not in data or len(request.body) > 20 * 1024:
            return Answer.of_json(200, {"code": 9499, "msg": "Bad Request", "data": {}})
        secret = self.feishu_tokens[token]
        if secret:
            timestamp, sign = str(data.get("timestamp", "")), str(data.get("sign", ""))
            fresh = timestamp.isdigit() and abs(int(timestamp) - self.now()) < 3600
            if not fresh or not hmac.compare_digest(sign, feishu_sign(timestamp, secret)):
                return Answer.of_json(
                    200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}
                )
        keywords = self.feishu_keywords.get(token)
        if keywords and not any(word in request.body.decode("utf-8") for word in keywords):
            return Answer.of_json(200, {"code": 19024, "msg": "Key Words Not Found"})
        return Answer.of_json(
            200, {"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}, "msg": "success"}
        )

    def _wecom(self, request: Recorded) -> Answer:
        key = (request.query.get("key") or [""])[0]
        if key not in self.wecom_keys:
            return Answer.of_json(
                200, {"errcode": 93000, "errmsg": "invalid webhook url, hint: [fake], from ip: 127.0.0.1"}
            )
        data = request.json
        if not isinstance(data, dict) or data.get("msgtype") not in (
            "text",
            "markdown",
            "markdown_v2",
            "news",
            "template_card",
        ):
            return Answer.of_json(200, {"errcode": 40008, "errmsg": "invalid message type"})
        content = (data.get(data["msgtype"]) or {}).get("content", "")
        if data["msgtype"].startswith("markdown") and len(content.encode()) > 4096:
            return Answer.of_json(200, {"errcode": 45002, "errmsg": "content exceed max length"})
        return Answer.of_json(200, {"errcode": 0, "errmsg": "ok"})

    def _slack(self, request: Recorded) -> Answer:
        if request.path[len("/slack") :] not in self.slack_hooks:
            return Answer.of_text(404, "no_service")
        if request.path[len("/slack") :] in self.slack_archived:
            return Answer.of_text(410, "channel_is_archived")
        data = request.json
        if not isinstance(data, dict) or not (data.get("text") or data.get("blocks")):
            return Answer.of_text(400, "no_text")
        # At most 50 blocks, and at most 3000 characters in a section's text.
        blocks = data.get("blocks") or []
        sections = [block.get("text") or {} for block in blocks if isinstance(block, dict)]
        if len(blocks) > 50 or any(len(str(text.get("text", ""))) > 3000 for text in sections):
            return Answer.of_text(400, "invalid_blocks")
        return Answer.of_text(200, "ok")

    def _zoom(self, request: Recorded) -> Answer:
        hook = request.path.rsplit("/", 1)[-1]
        if hook not in self.zoom_tokens:
            return Answer.of_json(404, {"code": 404, "message": "Webhook not found"})
        if request.headers.get("authorization", "") != self.zoom_tokens[hook]:
            return Answer.of_json(401, {"code": 401, "message": "Invalid authorization token"})
        return Answer(200)

    def _telegram(self, request: Recorded) -> Answer:
        # /telegram/bot<token>/sendMessage
        parts = request.path.split("/")
        token = parts[2][3:] if len(parts) > 3 and parts[2].startswith("bot") else ""
        if token not in self.telegram_bots:
            return Answer.of_json(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        data = request.json or {k: v[0] for k, v in request.form.items()}
        chat_id = str(data.get("chat_id", ""))
        if chat_id in {str(k) for k in self.telegram_migrations}:
            new_id = next(v for k, v in self.telegram_migrations.items() if str(k) == chat_id)
            return Answer.of_json(
                400,
                {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: group chat was upgraded to a supergroup chat",
                    "parameters": {"migrate_to_chat_id": new_id},
                },
            )
        if chat_id in self.telegram_gone:
            reason = self.telegram_gone[chat_id]
            status = 403 if reason.startswith("Forbidden") else 400
            return Answer.of_json(status, {"ok": False, "error_code": status, "description": reason})
        text = data.get("text", "")
        if not text:
            return Answer.of_json(
                400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
            )
        if len(text) > 4096:
            return Answer.of_json(
                400, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}
            )
        entities_error = telegram_entities_error(text) if str(data.get("parse_mode", "")).lower() == "html" else ""
        if entities_error:
            description = f"Bad Request: can't parse entities: {entities_error}"
            return Answer.of_json(400, {"ok": False, "error_code": 400, "description": description})
        return Answer.of_json(
            200,
            {
                "ok": True,
                "result": {
                    "message_id": len(self.requests),
                    "chat": {"id": chat_id},
                    "date": int(time.time()),
                    "text": text,
                },
            },
        )

    def _teams(self, request: Recorded) -> Answer:
        flow = request.path[len("/teams/") :]
        if self.teams_flows and flow not in self.teams_flows:
            return Answer.of_json(
                404, {"error": {"code": "WorkflowNotFound", "message": "The workflow could not be found."}}
            )
        # What the flow does with the card (or a body without attachments) is not reported back: always 202.
        return Answer(202)

    def _hook(self, request: Recorded) -> Answer:
        hook = request.path.split("/")[2] if len(request.path.split("/")) > 2 else ""
        secret = self.webhook_secrets.get(hook)
        if secret:
            expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(request.headers.get("x-oncall-signature", ""), expected):
                return Answer.of_json(401, {"error": "bad signature"})
        return Answer.of_json(200, {"ok": True})


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the fake providers on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8025)
    args = parser.parse_args()
    server = ProviderServer(args.port).start()
    print(f"Fake providers on {server.url()} (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
