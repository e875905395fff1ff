"""Whether a bot message's earlier attempt may have put the incident in the chat, when the retry is no longer needed:
a request that never left (a TLS handshake reset or stalled) has not; a message whose first part was posted has."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from channels_app.models import Bot
from oncall.lib import http
from oncall.models import Incident, Source
from oncall.services import lifecycle
from tests.factories import make_bot, make_user
from tests.integration.botkit import bot_deliveries, fire, later, paging_setup

pytestmark = pytest.mark.django_db(transaction=True)


class TlsBlackhole:
    """A TCP listener at an https:// URL that never completes a TLS handshake: it resets the connection on the
    ClientHello (what an SNI-filtering firewall does), or says nothing at all (a stalled handshake)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            if self.mode == "reset":
                conn.recv(4096)  # the ClientHello: no HTTP request has been sent yet
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            else:
                self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def blackhole(request):
    server = TlsBlackhole(request.param)
    yield server
    server.close()


@pytest.mark.parametrize("blackhole", ["reset", "stall"], indirect=True)
def test_a_tls_handshake_that_failed_means_the_request_never_left(blackhole, settings):
    """The TCP connection opened but TLS never completed: not a byte of the request was sent."""
    settings.HTTP_CONNECT_TIMEOUT = 0.5
    with pytest.raises(http.HttpError) as caught:
        http.request("POST", f"https://127.0.0.1:{blackhole.port}/hook", json={}, total_timeout=1.0)
    assert not caught.value.may_have_arrived, str(caught.value)


@pytest.mark.parametrize("blackhole", ["reset", "stall"], indirect=True)
def test_a_message_whose_tls_handshake_failed_still_reaches_the_chat_after_an_ack(
    client, clock, fakes, settings, blackhole
):
    """DingTalk's host is unreachable at the TLS level for the first attempt (the handshake is reset or stalls):
    the chat cannot have the incident. Ann acknowledges; the retry must still post it, as for a refused
    connection, instead of being cancelled as 'an earlier attempt may have posted it'."""
    settings.HTTP_CONNECT_TIMEOUT = 0.5
    settings.HTTP_TOTAL_TIMEOUT = 1.0
    ann = make_user("ann")
    fakes.dingtalk_tokens["T1"] = "SECsecret"
    ops = make_bot(
        "dingtalk",
        f"https://127.0.0.1:{blackhole.port}/dingtalk/robot/send?access_token=T1",
        name="Ops",
        secret="SECsecret",
    )
    fire(client, paging_setup(people=[ann], bots=[ops]), title="db down")
    assert blackhole.connections >= 1
    assert bot_deliveries(ops)[0].status == "pending"
    Bot.objects.filter(pk=ops.pk).update(url=fakes.url("/dingtalk/robot/send?access_token=T1"))  # the host is back
    clock.advance(seconds=5)
    incident = lifecycle.incident_acknowledge(
        incident=Incident.objects.get(), by=ann, source=Source.WEB, now=clock.current
    )
    later(clock, seconds=30)
    title = f"[Critical] #{incident.number} db down"
    posted = [request.json["markdown"]["title"] for request in fakes.received("/dingtalk")]
    post = bot_deliveries(ops)[0]
    assert posted == [f"[Acknowledged] {title}", title], (
        f"the chat only got the acknowledgement of an incident it never saw; delivery: {post.status} {post.error!r}"
    )


class OneAnswerThenGone:
    """A WeCom webhook host that answers one request ("ok") and then goes away: the next connection is refused."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.bodies: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        self.sock.close()  # gone: from now on connections are refused
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(
            next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        )
        while len(body) < length:
            body += conn.recv(65536)
        self.bodies.append(body)
        answer = b'{"errcode":0,"errmsg":"ok"}'
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(answer)}\r\n\r\n".encode()
            + answer
        )
        conn.close()


def test_a_wecom_message_whose_markdown_was_posted_is_not_posted_late_after_an_ack(client, clock, fakes):
    """WeCom takes two requests for a message that @mentions someone by mobile: the markdown, then a text with
    the mention. The markdown is posted (the chat has the incident); the host is gone for the text (connection
    refused). Ann acknowledges. The retry is no longer needed and the chat has the incident from this very
    message, so nothing more is posted (as before 31f94a1); the timeline must not claim that no earlier attempt
    reached the chat."""
    ann = make_user("ann", phone="+8613800000001")
    fakes.wecom_keys.add("K1")
    host = OneAnswerThenGone()
    ops = make_bot("wecom", f"http://127.0.0.1:{host.port}/wecom/cgi-bin/webhook/send?key=K1", name="Ops")
    fire(client, paging_setup(people=[ann], bots=[ops]), title="db down")
    host.thread.join(5)
    first = bot_deliveries(ops)[0]
    assert len(host.bodies) == 1 and b"markdown" in host.bodies[0], "the markdown reached the chat"
    assert (first.status, first.state["progress"]) == ("pending", {"done": ["markdown"]}), first.attempt_log
    Bot.objects.filter(pk=ops.pk).update(url=fakes.url("/wecom/cgi-bin/webhook/send?key=K1"))  # the host is back
    clock.advance(seconds=5)
    lifecycle.incident_acknowledge(incident=Incident.objects.get(), by=ann, source=Source.WEB, now=clock.current)
    later(clock, seconds=30)
    late = [
        r.json["text"]
        for r in fakes.received("/wecom")
        if r.json.get("msgtype") == "text" and not r.json["text"]["content"].startswith("[Acknowledged]")
    ]
    timeline = list(Incident.objects.get().timeline.filter(kind="notified").values_list("message", flat=True))
    assert late == [], f"the chat got an @mention for an incident already acknowledged: {late}; timeline: {timeline}"
    assert not any("as no earlier attempt had reached the chat" in line for line in timeline), timeline
