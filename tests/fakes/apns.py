"""A fake APNs on 127.0.0.1: HTTP/2 over TLS (ALPN h2 only, as Apple's), speaking the provider API of
shared/reference/protocols.md §10.

It checks what APNs checks: `POST /3/device/<hex token>`, a provider token (`authorization: bearer <JWT>`, ES256,
signed by the key registered for its `kid`, `iss` the team id, no older than an hour), `apns-topic`,
`apns-push-type`, a JSON payload of at most 4096 bytes. It answers 200 with an `apns-id`, or Apple's error
bodies (`{"reason": ...}`): 403 InvalidProviderToken / ExpiredProviderToken, 400 BadPath / MissingTopic /
BadDeviceToken / BadPriority, 413 PayloadTooLarge; BadDeviceToken also for a token of the other environment
(`other_environment`: a development build's tokens when the fake plays production, or the reverse), as Apple does.
A test can script the next answers (`answers`, each an httpx.Response), run a hook on each request (`on_request`,
e.g. to move a fake clock while APNs "takes" 14 s) and reads what arrived (`requests`). The certificate is
self-signed for 127.0.0.1; `client_ssl_context()` trusts it.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PAYLOAD_MAX = 4096
TOKEN_MAX_AGE = 3600


@dataclass
class ApnsRequest:
    """One request as APNs received it."""

    method: str
    path: str
    authority: str
    headers: dict[str, str]
    content: bytes

    @property
    def url(self) -> httpx.URL:
        return httpx.URL(f"https://{self.authority}{self.path}")


def _self_signed() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake APNs")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


class FakeApns:
    def __init__(self, *, team_id: str, keys: dict[str, object], topic: str) -> None:
        """`keys`: the public key of each provider key id (`kid`) the fake accepts tokens from."""
        self.team_id, self.keys, self.topic = team_id, keys, topic
        self.requests: list[ApnsRequest] = []
        self.answers: list[httpx.Response] = []
        self.apns_ids: list[str] = []  # of the pushes it accepted, in order
        self.other_environment: set[str] = set()  # device tokens Apple issued for the other environment
        self.on_request: Callable[[ApnsRequest], None] | None = None
        self.now: Callable[[], float] = time.time
        self._cert_pem, key_pem = _self_signed()
        self._server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._server_context.set_alpn_protocols(["h2"])
        with tempfile.NamedTemporaryFile() as cert_file, tempfile.NamedTemporaryFile() as key_file:
            cert_file.write(self._cert_pem)
            key_file.write(key_pem)
            cert_file.flush()
            key_file.flush()
            self._server_context.load_cert_chain(cert_file.name, key_file.name)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="fake-apns").start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's certificate (and nothing else)."""
        context = httpx.create_ssl_context(trust_env=False)
        context.load_verify_locations(cadata=self._cert_pem.decode())
        return context

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    # -- the server ----------------------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed:
            try:
                raw, _address = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            sock = self._server_context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        if sock.selected_alpn_protocol() != "h2":
            sock.close()  # APNs speaks HTTP/2 only
            return
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        streams: dict[int, dict] = {}
        try:
            while True:
                data = sock.recv(65535)
                if not data:
                    return
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        headers = {name.decode(): value.decode() for name, value in event.headers}
                        streams[event.stream_id] = {"headers": headers, "body": b""}
                    elif isinstance(event, h2.events.DataReceived):
                        streams[event.stream_id]["body"] += event.data
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        stream = streams.pop(event.stream_id)
                        status, headers, body = self._answer(stream["headers"], stream["body"])
                        conn.send_headers(
                            event.stream_id, [(":status", str(status)), *headers.items()], end_stream=not body
                        )
                        if body:
                            conn.send_data(event.stream_id, body, end_stream=True)
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        return
                sock.sendall(conn.data_to_send())
        except (OSError, ssl.SSLError, h2.exceptions.ProtocolError):
            return
        finally:
            sock.close()

    def _answer(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        request = ApnsRequest(
            method=headers.get(":method", ""),
            path=headers.get(":path", ""),
            authority=headers.get(":authority", ""),
            headers={name: value for name, value in headers.items() if not name.startswith(":")},
            content=body,
        )
        with self._lock:
            self.requests.append(request)
            scripted = self.answers.pop(0) if self.answers else None
        if self.on_request is not None:
            self.on_request(request)
        refused = self._check(request)
        if refused is not None:
            return refused
        if scripted is not None:
            headers = {
                name.lower(): value for name, value in scripted.headers.items() if name.lower() != "content-length"
            }
            return scripted.status_code, headers, scripted.content
        apns_id = str(uuid.uuid4()).upper()
        self.apns_ids.append(apns_id)
        return 200, {"apns-id": apns_id}, b""

    def _check(self, request: ApnsRequest) -> tuple[int, dict[str, str], bytes] | None:
        """Apple's answer to a request it refuses, or None."""

        def error(status: int, reason: str) -> tuple[int, dict[str, str], bytes]:
            return status, {"content-type": "application/json"}, json.dumps({"reason": reason}).encode()

        if request.method != "POST":
            return error(405, "MethodNotAllowed")
        prefix, _, token = request.path.partition("/3/device/")
        if prefix or not token:
            return error(404, "BadPath")
        try:
            bytes.fromhex(token)
        except ValueError:
            return error(400, "BadDeviceToken")
        if token in self.other_environment:
            return error(400, "BadDeviceToken")
        provider_token = request.headers.get("authorization", "").removeprefix("bearer ")
        try:
            kid = jwt.get_unverified_header(provider_token).get("kid")
            claims = jwt.decode(provider_token, self.keys[kid], algorithms=["ES256"])
        except (jwt.PyJWTError, KeyError):
            return error(403, "InvalidProviderToken")
        if claims.get("iss") != self.team_id:
            return error(403, "InvalidProviderToken")
        if self.now() - claims.get("iat", 0) > TOKEN_MAX_AGE:
            return error(403, "ExpiredProviderToken")
        if not request.headers.get("apns-topic"):
            return error(400, "MissingTopic")
        if request.headers["apns-topic"] != self.topic:
            return error(400, "DeviceTokenNotForTopic")
        if request.headers.get("apns-push-type") not in ("alert", "background", "voip"):
            return error(400, "InvalidPushType")
        if request.headers.get("apns-priority", "10") not in ("10", "5", "1"):
            return error(400, "BadPriority")
        if not request.content:
            return error(400, "PayloadEmpty")
        if len(request.content) > PAYLOAD_MAX:
            return error(413, "PayloadTooLarge")
        return None
