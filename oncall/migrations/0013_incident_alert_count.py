"""Incidents keep how many alerts they hold (the cap on alerts per incident read a count over all of them for every
grouped alert), counted here for the incidents there are; and the index of an incident's open alerts takes their
severity, so an incident's severity is worked out without reading every open alert."""

from django.db import migrations, models
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce


def count_alerts(apps, schema_editor):
    Alert = apps.get_model("oncall", "Alert")
    Incident = apps.get_model("oncall", "Incident")
    counts = Alert.objects.filter(incident=OuterRef("pk")).order_by().values("incident").annotate(n=Count("pk"))
    Incident.objects.update(alert_count=Coalesce(Subquery(counts.values("n")), 0))


class Migration(migrations.Migration):
    dependencies = [
        ("oncall", "0012_device_apns_token_lowercase"),
    ]

    operations = [
        migrations.AddField(
            model_name="incident",
            name="alert_count",
            field=models.PositiveIntegerField(
                default=0, editable=False, help_text="How many alerts, open or closed, it holds.", verbose_name="alerts"
            ),
        ),
        migrations.RunPython(count_alerts, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="alert",
            index=models.Index(fields=["incident", "progress", "severity"], name="oncall_alert_incident_prog_sev"),
        ),
        migrations.RemoveIndex(
            model_name="alert",
            name="oncall_alert_incident_prog",
        ),
    ]
