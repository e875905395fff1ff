"""Secrets never appear where others can read them: integration keys, API tokens, calendar feed tokens, bot secrets
and the tokens inside bot webhook URLs are not in the logs (an ingest, a delivery, a failing delivery, a refused
push, a server error), not in error pages with DEBUG off, not in any admin list or form, and not in full in any API
response.
"""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from gunicorn.config import Config

from channels_app.models import Bot
from oncall.api import ingest
from oncall.lib.logs import ContextFilter, json_formatter
from tests.factories import make_bot, make_channel, make_integration, make_rule, make_team, push
from tests.security.conftest import World, signed_in
from tests.security.routes import is_admin, is_hook, routes
from tests.security.test_authentication import is_public

pytestmark = pytest.mark.django_db

DINGTALK_TOKEN = "dtalkaccesstoken0123456789abcdef"
DINGTALK_SECRET = "SECdingtalksigningsecret0123456789"
SLACK_PATH = "/slack/services/T0SECRET/B0SECRET/slackwebhooksecret0123456789"


class Leaks:
    def __init__(self, world: World, bots: list[Bot], key: str) -> None:
        self.world = world
        self.bots = bots
        self.key = key

    def secrets(self) -> dict[str, str]:
        world = self.world
        return {
            "integration key (ann)": world.ann.integration_key,
            "integration key (ben)": world.ben.integration_key,
            "integration key (bots)": self.key,
            "API token (ann)": world.ann.token_value,
            "API token (ben)": world.ben.token_value,
            "calendar feed token": world.ann.feed_token,
            "DingTalk access token": DINGTALK_TOKEN,
            "DingTalk signing secret": DINGTALK_SECRET,
            "Slack webhook path": SLACK_PATH.rsplit("/", 1)[1],
        }

    def assert_absent(self, text: str, where: str) -> None:
        found = [name for name, secret in self.secrets().items() if secret in text]
        assert not found, f"{where} shows {found}"


@pytest.fixture
def leaks(world: World, fakes, caplog) -> Leaks:
    """Ann's team also has a channel whose rule posts to a DingTalk bot (signed) and a Slack webhook."""
    caplog.set_level(logging.DEBUG)
    fakes.dingtalk_tokens[DINGTALK_TOKEN] = DINGTALK_SECRET
    dingtalk = make_bot(
        "dingtalk", fakes.url(f"/dingtalk/robot/send?access_token={DINGTALK_TOKEN}"), secret=DINGTALK_SECRET
    )
    slack = make_bot("slack", fakes.url(SLACK_PATH))
    channel = make_channel("Ann's bots", team=make_team("Ann's bot team", [world.ann.user]))
    make_rule(channel, [{"people": [world.ann.user], "methods": ["email"], "bots": [dingtalk, slack]}])
    _integration, key = make_integration(channel=channel, name="Bot monitor")
    return Leaks(world, [dingtalk, slack], key)


def test_logs_show_no_secret_across_ingest_delivery_and_errors(leaks, fakes, caplog, monkeypatch):
    world = leaks.world
    fakes.fail_next("/slack/", status=500, text="upstream broke", times=5)
    event = {"title_rule": "Disk full", "event_status": "Critical", "alert_key": "disk"}
    assert push(Client(), leaks.key, event).status_code == 200
    assert fakes.received("/dingtalk/") and fakes.received("/slack/")  # a delivery, and a failing one
    assert push(Client(), leaks.key[:-3] + "zzz", event).status_code in (400, 401, 404)  # a refused push
    api = Client(HTTP_AUTHORIZATION=f"Bearer {world.ann.token_value}")
    assert api.get("/api/v1/incidents/").status_code == 200
    assert Client(HTTP_AUTHORIZATION=f"Bearer {world.ann.token_value}x").get("/api/v1/me/").status_code == 401
    assert Client().get(f"/calendar/person/{world.ann.feed_token}.ics").status_code == 200

    def boom(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(ingest, "events_accept", boom)
    response = Client(raise_request_exception=False).post(
        f"/event/push/alert/standard?integration_key={leaks.key}", data=event, content_type="application/json"
    )
    assert response.status_code == 500
    assert any(record.levelno >= logging.ERROR for record in caplog.records)
    leaks.assert_absent(caplog.text, "the log")
    # As the deployed formatters write them, both of them: the JSON one writes a record's extra attributes too.
    context = ContextFilter()
    for name, formatter in (
        ("text", logging.Formatter(settings.LOGGING["formatters"]["text"]["format"])),
        ("json", json_formatter()),
    ):
        for record in caplog.records:
            context.filter(record)
            leaks.assert_absent(formatter.format(record), f"the {name} log line of {record.name}")
    assert len(caplog.records) > 20


def test_error_pages_show_no_secret(leaks, settings, monkeypatch):
    assert settings.DEBUG is False
    world = leaks.world
    client = Client(raise_request_exception=False)
    client.force_login(world.ann.user)
    pages = [
        client.get(f"/event/push/alert/standard?integration_key={leaks.key}"),  # 405
        client.get(f"/no-such-page/?integration_key={leaks.key}&token={world.ann.token_value}"),  # 404
        client.post(f"/event/push/alert/no-such-format?integration_key={leaks.key}", data="{}", content_type="x/y"),
        Client(HTTP_AUTHORIZATION=f"Bearer {world.ann.token_value}").get("/api/v1/incidents/999999/"),
        client.get(f"/calendar/person/{world.ann.feed_token}x.ics"),
    ]

    def boom(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(ingest, "events_accept", boom)
    event = {"title_rule": "Disk full", "event_status": "Critical"}
    pages.append(
        client.post(
            f"/event/push/alert/standard?integration_key={leaks.key}", data=event, content_type="application/json"
        )
    )
    assert [page.status_code for page in pages] == [405, 404, 404, 404, 404, 500]
    for page in pages:
        leaks.assert_absent(page.content.decode(errors="replace"), f"the {page.status_code} page")
        assert b"Traceback" not in page.content


def test_no_admin_list_or_form_shows_a_secret(leaks):
    admin = signed_in(leaks.world.root)
    pages = routes(lambda r: is_admin(r) and not r.params and (r.key.endswith("_changelist") or r.key.endswith("_add")))
    assert len(pages) >= 20
    objects = {
        "admin:oncall_integration_change": leaks.world.ann.integration.pk,
        "admin:oncall_apitoken_change": leaks.world.ann.token.pk,
        "admin:channels_app_bot_change": leaks.bots[0].pk,
    }
    checked = [page.path() for page in pages]
    checked += [route.path(object_id=objects[route.key]) for route in routes(lambda r: r.key in objects)]
    checked.append("/admin/")
    assert len(checked) == len(pages) + len(objects) + 1
    for path in checked:
        response = admin.get(path)
        # Some models may not be added by hand (django-q's results): their add page is a 403.
        assert response.status_code == 200 or (path.endswith("/add/") and response.status_code == 403), path
        leaks.assert_absent(response.content.decode(errors="replace"), path)


def test_no_api_response_shows_a_secret_in_full(leaks):
    """Every API read, and every write short of creating a token (which shows the new token once, by design)."""
    world = leaks.world
    api = Client(HTTP_AUTHORIZATION=f"Bearer {world.ann.token_value}")
    checked = 0
    for route in routes(lambda r: r.is_drf and not is_hook(r)):
        path = route.path(incident_id=world.ann.incident.pk, token_id=world.ann.token.pk, device_id=0)
        for method in route.drf_methods():
            if method == "get":
                response = api.get(path)
            elif route.key in ("api:token-list",) or method == "delete" or is_public(route):
                continue
            else:
                response = getattr(api, method)(path, data={}, content_type="application/json")
            leaks.assert_absent(response.content.decode(errors="replace"), f"{method} {path}")
            checked += 1
    assert checked >= 30


def test_the_deployed_access_log_writes_no_query_string():
    unit = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "oncall-web.service"
    command = unit.read_text(encoding="utf-8").replace("\\\n", " ")
    exec_start = next(line for line in command.splitlines() if line.startswith("ExecStart="))
    config = Config()
    parsed = config.parser().parse_args(shlex.split(exec_start)[2:])
    for name, value in vars(parsed).items():
        if value is not None and name in config.settings:
            config.set(name, value)
    if config.accesslog:
        assert "%(r)s" not in config.access_log_format
        assert "%(q)s" not in config.access_log_format


def test_the_embedded_web_servers_request_log_writes_no_integration_key():
    key = "a" * 24 + "secretkey0"
    logger = logging.getLogger("django.server")
    record = logger.makeRecord(
        "django.server",
        logging.INFO,
        __file__,
        0,
        '"%s" %s %s',
        (f"POST /event/push/alert/standard?integration_key={key} HTTP/1.1", "200", "52"),
        None,
    )
    handlers = logger.handlers if not logger.propagate else [*logger.handlers, *logging.getLogger().handlers]
    assert handlers
    for handler in handlers:
        if handler.filter(record):
            assert key not in handler.format(record), handler
