from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig
from django.utils.translation import gettext_lazy as _


class OncallConfig(AppConfig):
    name = "oncall"
    label = "oncall"
    verbose_name = _("On-call")


class OncallAdminConfig(AdminConfig):
    """Django's admin, with the platform's own site (a dashboard on the front page)."""

    default_site = "oncall.admin_site.OncallAdminSite"
