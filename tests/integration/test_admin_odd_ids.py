"""Admin pages given a "number" that str.isdigit() accepts but int() does not (a superscript digit) answer with
the page and its error, not a 500. (Django's own autocomplete widgets still answer 500 to a junk id posted for
them, e.g. a layer's schedule; only staff can post one.)"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from channels_app.models import TemplateSet
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client():
    # raise_request_exception=False: see the status code a browser gets instead of the exception.
    client = Client(raise_request_exception=False)
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


def test_template_preview_with_a_superscript_incident_id_is_not_a_500(staff_client):
    template_set = TemplateSet.objects.create(name="Night shift")
    url = reverse("admin:channels_app_templateset_preview", args=[template_set.pk])
    # "²".isdigit() is True, int("²") raises ValueError inside the ORM.
    response = staff_client.get(url, {"incident": "²"})
    assert response.status_code == 200
