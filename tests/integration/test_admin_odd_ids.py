"""Admin pages given a "number" that str.isdigit() accepts but int() does not (a superscript digit) answer with
the page and its error, not a 500; so do the autocomplete fields given a junk id (oncall/admin_autocomplete.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.contrib import admin as django_admin
from django.test import Client, RequestFactory
from django.urls import reverse

from channels_app.models import TemplateSet
from oncall.models import User
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


def _superuser_request():
    request = RequestFactory().get("/")
    request.user = SimpleNamespace(is_active=True, is_superuser=True, has_perm=lambda *args: True)
    return request


def _autocomplete_fields():
    """(admin url name, form field name) for every autocomplete field of the admin's add pages, inlines included."""
    found = []
    for model, model_admin in django_admin.site._registry.items():
        if not model_admin.has_add_permission(_superuser_request()):
            continue  # incidents are opened by alerts and the API, not in the admin
        url = f"admin:{model._meta.app_label}_{model._meta.model_name}_add"
        for field in model_admin.autocomplete_fields:
            found.append((url, field, None))
        for inline in model_admin.inlines:
            for field in inline.autocomplete_fields:
                found.append((url, field, inline))
    return found


@pytest.mark.parametrize(("url", "field", "inline"), _autocomplete_fields(), ids=lambda v: getattr(v, "__name__", v))
@pytest.mark.parametrize("junk", ["x", "²", str(2**70)])
def test_a_junk_id_posted_for_an_autocomplete_field_is_the_form_with_its_error(staff_client, url, field, inline, junk):
    """Django's autocomplete widgets look the posted ids up to show them again; a junk one made that a 500."""
    data = {}
    if inline is not None:
        request = RequestFactory().get("/")
        request.user = User.objects.get(username="root")
        parent = django_admin.site._registry  # the registered model whose add page this is
        parent_model = next(model for model in parent if inline in parent[model].inlines)
        prefix = inline(parent_model, django_admin.site).get_formset(request).get_default_prefix()
        data.update({f"{prefix}-TOTAL_FORMS": "1", f"{prefix}-INITIAL_FORMS": "0", f"{prefix}-0-{field}": junk})
    else:
        data[field] = junk
    response = staff_client.post(reverse(url), data)
    assert response.status_code == 200, response.content[:500]
    assert b"errornote" in response.content or b"errorlist" in response.content
