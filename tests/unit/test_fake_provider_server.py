"""The fake provider server checks what the real providers check, with the reference's test vectors."""

from __future__ import annotations

import time
from urllib.parse import quote

import requests

from tests.fakes.provider_rules import dingtalk_sign, feishu_sign


def test_signature_helpers_match_the_reference_vectors():
    assert dingtalk_sign("1700000000000", "SECexample") == "uroalHrWHORz59talE1o26b8HuX2kOp8WlAN91F9Pj0="
    assert feishu_sign("1700000000", "feishu-secret") == "OrBzY1Y01Gq+HgJsl+7OfWcMVwc7YocohQm5iiZwjhU="


def test_dingtalk_refuses_a_bad_signature_and_accepts_a_good_one(fake_providers):
    fake_providers.dingtalk_tokens["T"] = "SECsecret"
    url = fake_providers.url("/dingtalk/robot/send")
    body = {"msgtype": "text", "text": {"content": "hi"}}
    ts = str(int(time.time() * 1000))
    bad = requests.post(f"{url}?access_token=T&timestamp={ts}&sign=nope", json=body, timeout=5).json()
    assert bad["errcode"] == 310000
    good_sign = quote(dingtalk_sign(ts, "SECsecret"), safe="")
    good = requests.post(f"{url}?access_token=T&timestamp={ts}&sign={good_sign}", json=body, timeout=5).json()
    assert good == {"errcode": 0, "errmsg": "ok"}
    assert requests.post(f"{url}?access_token=unknown", json=body, timeout=5).json()["errcode"] == 300001


def test_feishu_checks_the_signature_in_the_body(fake_providers):
    fake_providers.feishu_tokens["hook1"] = "s3cret"
    url = fake_providers.url("/feishu/open-apis/bot/v2/hook/hook1")
    ts = str(int(time.time()))
    ok = requests.post(url, json={"timestamp": ts, "sign": feishu_sign(ts, "s3cret"), "msg_type": "text"}, timeout=5)
    assert ok.json()["code"] == 0
    bad = requests.post(url, json={"timestamp": ts, "sign": "x", "msg_type": "text"}, timeout=5)
    assert bad.json()["code"] == 19021


def test_twilio_needs_basic_auth_and_validates_numbers(fake_providers):
    fake_providers.twilio_accounts["AC1"] = "tok"
    url = fake_providers.url("/twilio/2010-04-01/Accounts/AC1/Messages.json")
    assert requests.post(url, data={"To": "+15550001111", "Body": "x"}, timeout=5).status_code == 401
    sent = requests.post(url, data={"To": "+15550001111", "From": "+1555", "Body": "x"}, auth=("AC1", "tok"), timeout=5)
    assert sent.status_code == 201 and sent.json()["sid"].startswith("SM")
    invalid = requests.post(url, data={"To": "5551234", "Body": "x"}, auth=("AC1", "tok"), timeout=5)
    assert (invalid.status_code, invalid.json()["code"]) == (400, 21211)
    assert fake_providers.received("/twilio")[1].field("Body") == "x"


def test_scripted_failures_delays_and_rate_limits(fake_providers):
    fake_providers.slack_hooks.add("/services/T/B/X")
    url = fake_providers.url("/slack/services/T/B/X")
    fake_providers.fail_next("/slack", status=429, text="rate_limited", headers={"Retry-After": "3"})
    first = requests.post(url, json={"text": "a"}, timeout=5)
    assert (first.status_code, first.headers["Retry-After"]) == (429, "3")
    assert requests.post(url, json={"text": "a"}, timeout=5).text == "ok"
    fake_providers.rate_limits["/telegram"] = (1, 60)
    fake_providers.telegram_bots.add("123:ABC")
    tg = fake_providers.url("/telegram/bot123:ABC/sendMessage")
    assert requests.post(tg, json={"chat_id": 1, "text": "x"}, timeout=5).json()["ok"] is True
    limited = requests.post(tg, json={"chat_id": 1, "text": "x"}, timeout=5).json()
    assert limited["parameters"]["retry_after"] == 60


def test_zoom_needs_the_verification_token(fake_providers):
    fake_providers.zoom_tokens["abc"] = "verif"
    url = fake_providers.url("/zoom/chat/webhooks/incomingwebhook/abc?format=full")
    assert requests.post(url, json={}, headers={"Authorization": "nope"}, timeout=5).status_code == 401
    assert requests.post(url, json={}, headers={"Authorization": "verif"}, timeout=5).status_code == 200


def test_fcm_needs_its_bearer_token(fake_providers):
    fake_providers.fcm_access_tokens.add("ya29.test")
    url = fake_providers.url("/fcm/v1/projects/demo/messages:send")
    body = {"message": {"token": "device", "notification": {"title": "t"}}}
    assert requests.post(url, json=body, timeout=5).status_code == 401
    ok = requests.post(url, json=body, headers={"Authorization": "Bearer ya29.test"}, timeout=5)
    assert ok.json()["name"].startswith("projects/demo/messages/")


def test_telegram_refuses_html_it_cannot_parse(fake_providers):
    fake_providers.telegram_bots.add("1:A")
    url = fake_providers.url("/telegram/bot1:A/sendMessage")

    def send(text: str) -> dict:
        return requests.post(url, json={"chat_id": -1, "text": text, "parse_mode": "HTML"}, timeout=5).json()

    assert send('<b>P1</b> db &lt;down&gt; <a href="https://x/">Open</a>')["ok"] is True
    assert send("line<br>line")["description"].startswith("Bad Request: can't parse entities: Unsupported start tag")
    assert send("<b>P1 db down")["description"].endswith('Can\'t find end tag corresponding to start tag "b"')
    assert "Unmatched end tag" in send("<b><i>x</b></i>")["description"]
    plain = requests.post(url, json={"chat_id": -1, "text": "a <br> b"}, timeout=5).json()
    assert plain["ok"] is True  # no parse mode: plain text
