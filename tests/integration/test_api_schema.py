"""The OpenAPI schema at /api/schema/ describes the whole REST API, and /api/docs/ needs nothing from the internet."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from drf_spectacular.drainage import reset_generator_stats

pytestmark = pytest.mark.django_db

OPERATIONS = {
    ("/api/v1/incidents/", "get"): "incident_list",
    ("/api/v1/incidents/", "post"): "incident_create",
    ("/api/v1/incidents/{incident_id}/", "get"): "incident_detail",
    ("/api/v1/incidents/{incident_id}/", "patch"): "incident_edit",
    ("/api/v1/incidents/{incident_id}/alerts/", "get"): "incident_alerts",
    ("/api/v1/incidents/{incident_id}/timeline/", "get"): "incident_timeline",
    ("/api/v1/incidents/{incident_id}/acknowledge/", "post"): "incident_acknowledge",
    ("/api/v1/incidents/{incident_id}/unacknowledge/", "post"): "incident_unacknowledge",
    ("/api/v1/incidents/{incident_id}/close/", "post"): "incident_close",
    ("/api/v1/incidents/{incident_id}/reopen/", "post"): "incident_reopen",
    ("/api/v1/incidents/{incident_id}/snooze/", "post"): "incident_snooze",
    ("/api/v1/incidents/{incident_id}/wake/", "post"): "incident_wake",
    ("/api/v1/incidents/{incident_id}/escalate/", "post"): "incident_escalate",
    ("/api/v1/incidents/{incident_id}/reassign/", "post"): "incident_reassign",
    ("/api/v1/incidents/{incident_id}/responders/", "post"): "incident_add_responders",
    ("/api/v1/incidents/{incident_id}/comment/", "post"): "incident_comment",
    ("/api/v1/incidents/{incident_id}/merge/", "post"): "incident_merge",
    ("/api/v1/me/", "get"): "me_detail",
    ("/api/v1/me/", "patch"): "me_edit",
    ("/api/v1/me/tokens/", "get"): "api_token_list",
    ("/api/v1/me/tokens/", "post"): "api_token_create",
    ("/api/v1/me/tokens/{token_id}/", "delete"): "api_token_revoke",
    ("/api/v1/me/shifts/", "get"): "my_shift_list",
    ("/api/v1/me/calendar-feed/", "post"): "calendar_feed_create",
    ("/api/v1/me/calendar-feed/", "delete"): "calendar_feed_revoke",
    ("/api/v1/me/contacts/", "get"): "contact_list",
    ("/api/v1/me/contacts/phone/", "post"): "contact_phone_bind",
    ("/api/v1/me/contacts/phone/", "delete"): "contact_phone_remove",
    ("/api/v1/me/contacts/phone/verify/", "post"): "contact_phone_verify",
    ("/api/v1/me/contacts/email/", "post"): "contact_email_bind",
    ("/api/v1/me/contacts/email/verify/", "post"): "contact_email_verify",
    ("/api/v1/me/preferences/", "get"): "preference_list",
    ("/api/v1/me/preferences/", "put"): "preference_update",
    ("/api/v1/me/devices/", "get"): "device_list",
    ("/api/v1/me/devices/", "post"): "device_link",
    ("/api/v1/me/devices/{device_id}/", "delete"): "device_unlink",
    ("/api/v1/me/devices/web-push-key/", "get"): "web_push_key",
    ("/api/v1/me/voice-numbers.vcf", "get"): "voice_numbers_vcard",
    ("/api/v1/devices/link/", "post"): "device_link_redeem",
}
# Answers that are a file, not the JSON envelope.
NOT_ENVELOPED = {"voice_numbers_vcard": "text/vcard"}
# Authenticated by something else than a session or an API token: the QR code's one-time link token.
PUBLIC = {"device_link_redeem"}
WITH_BODY = {
    "incident_create": "IncidentCreateRequest",
    "incident_edit": "PatchedIncidentEditRequest",
    "incident_close": "IncidentCloseRequest",
    "incident_reopen": "IncidentReopenRequest",
    "incident_snooze": "IncidentSnoozeRequest",
    "incident_escalate": "IncidentEscalateRequest",
    "incident_reassign": "IncidentReassignRequest",
    "incident_add_responders": "IncidentAddRespondersRequest",
    "incident_comment": "IncidentCommentRequest",
    "incident_merge": "IncidentMergeRequest",
    "me_edit": "PatchedProfileEditRequest",
    "api_token_create": "ApiTokenCreateRequest",
    "contact_phone_bind": "PhoneBindRequest",
    "contact_email_bind": "EmailBindRequest",
    "contact_phone_verify": "ContactVerifyRequest",
    "contact_email_verify": "ContactVerifyRequest",
    "preference_update": "NotificationPreferencesRequest",
    "device_link": "DeviceLinkRequest",
    "device_link_redeem": "DeviceLinkRedeemRequest",
}


@pytest.fixture
def schema(client) -> dict:
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def ref_name(content: dict) -> str:
    return content["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]


def test_the_schema_generates_and_validates_without_errors_or_warnings(tmp_path):
    reset_generator_stats()
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert "/api/v1/incidents/{incident_id}/snooze/" in (tmp_path / "schema.yml").read_text()


def test_every_v1_operation_is_described_with_its_body_and_enveloped_answers(schema):
    v1 = {(path, method) for path, item in schema["paths"].items() if "/v1/" in path for method in item}
    assert v1 == set(OPERATIONS)
    components = schema["components"]["schemas"]
    for (path, method), operation_id in OPERATIONS.items():
        operation = schema["paths"][path][method]
        assert operation["operationId"] == operation_id
        if operation_id in PUBLIC:
            assert not operation.get("security"), operation_id
        else:
            assert {"apiToken": []} in operation["security"], operation_id
        success = next(status for status in operation["responses"] if status in ("200", "201"))
        if operation_id in NOT_ENVELOPED:
            assert set(operation["responses"][success]["content"]) == {NOT_ENVELOPED[operation_id]}
        else:
            envelope = components[ref_name(operation["responses"][success]["content"])]
            assert set(envelope["properties"]) == {"request_id", "data"}, operation_id
        if operation_id not in PUBLIC:
            assert ref_name(operation["responses"]["401"]["content"]) == "ErrorEnvelope"
        if "{incident_id}" in path or "{device_id}" in path:
            assert ref_name(operation["responses"]["404"]["content"]) == "ErrorEnvelope"
        if operation_id in WITH_BODY:
            assert ref_name(operation["requestBody"]["content"]) == WITH_BODY[operation_id]
        else:
            assert "requestBody" not in operation, operation_id
    assert components["IncidentSnoozeRequest"]["properties"]["minutes"] == {
        "type": "integer",
        "maximum": 1440,
        "minimum": 1,
    }
    assert set(components["ErrorEnvelope"]["properties"]["error"].items()) == {("$ref", "#/components/schemas/Error")}
    assert set(components["Error"]["properties"]) == {"code", "message", "field"}


def test_the_incident_list_documents_its_filters_and_page(schema):
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/incidents/"]["get"]["parameters"]}
    assert set(parameters) == {"progress", "severity", "channel", "mine", "since", "until", "q", "p", "limit"}
    assert parameters["progress"]["schema"]["items"]["enum"] == ["Triggered", "Processing", "Closed"]
    assert parameters["limit"]["schema"] == {"type": "integer", "maximum": 100, "minimum": 1, "default": 20}
    page = schema["components"]["schemas"]["IncidentPage"]
    assert set(page["properties"]) == {"items", "total", "p", "limit", "has_next_page"}


def test_the_ingest_endpoint_is_described_with_the_standard_event(schema):
    operation = schema["paths"]["/event/push/alert/{source}"]["post"]
    assert ref_name(operation["requestBody"]["content"]) == "StandardEventRequest"
    assert "security" not in operation, "monitors authenticate with the integration key, not a token"
    assert {p["name"]: p["required"] for p in operation["parameters"]} == {"source": True, "integration_key": True}
    event = schema["components"]["schemas"]["StandardEventRequest"]
    assert set(event["required"]) == {"title_rule", "event_status"}
    assert ref_name(operation["responses"]["200"]["content"]) == "AlertPushEnvelope"
    assert {"400", "401", "429"} <= set(operation["responses"])


def test_swagger_ui_is_served_from_our_own_static_files(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    assert all(asset.startswith("/static/") for asset in assets), assets
    for asset in assets:
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not among our static files"
    assert not re.search(r"https?://", page), "no external host"
    assert 'url: "/api/schema/"' in page
