"""Reset the benchmark database to a known state: one channel, one rule, one integration with a known key."""

from django.core.management.base import BaseCommand
from django.db import connection

from bench import BENCH_KEY
from bench.models import CeilingRow
from escalation.models import EscalationLevel, EscalationRule
from oncall.models import Channel, Integration, Team, User


class Command(BaseCommand):
    help = "Prepare the benchmark database (drops previous alerts, incidents and queued tasks)."

    def handle(self, *args, **options) -> None:
        with connection.cursor() as cursor:
            for table in (
                "channels_app_delivery",
                "escalation_timer",
                "escalation_escalationstate",
                "oncall_timelineentry",
                "oncall_incidentevent",
                "oncall_alert",
                "oncall_responder",
                "oncall_incident",
                "oncall_eventbatch",
                "django_q_ormq",
                "django_q_task",
            ):
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608 (fixed table names)
        CeilingRow.objects.all().delete()
        person, _ = User.objects.get_or_create(username="bench-oncall", defaults={"email": "oncall@bench.test"})
        team, _ = Team.objects.get_or_create(name="Bench")
        channel, _ = Channel.objects.get_or_create(name="Bench", defaults={"team": team})
        rule, created = EscalationRule.objects.get_or_create(channel=channel, name="Bench")
        if created:
            level = EscalationLevel.objects.create(rule=rule, position=0)
            level.people.set([person])
        integration = Integration.objects.filter(name="Bench").first() or Integration(name="Bench")
        integration.channel = channel
        integration.rate_limit_per_second = 10**7
        integration.rate_limit_per_minute = 10**8
        integration.set_new_key(BENCH_KEY)
        integration.save()
        self.stdout.write("benchmark database ready")
