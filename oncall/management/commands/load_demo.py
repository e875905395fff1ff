"""`manage.py load_demo`: the demo data set the run command loads, enough to push an alert and see a page."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from escalation.models import EscalationLevel, EscalationRule
from oncall.models import Channel, Integration, Team, User

DEMO_INTEGRATION_KEY = "demo0000000000000000000000000000"
DEMO_ADMIN = ("admin", "admin")
DEMO_ENGINEERS = (
    ("alice", "Alice", "Chen", "alice@example.com"),
    ("bob", "Bob", "Okafor", "bob@example.com"),
)


@dataclass(frozen=True)
class Demo:
    team: Team
    channel: Channel
    integration: Integration
    admin: User
    engineers: tuple[User, ...]


@transaction.atomic
def demo_load() -> Demo:
    """Create (or bring back to its known state) the demo team, people, channel, integration and rule.

    Idempotent: running it again changes nothing but restores anything a visitor broke.
    """
    username, password = DEMO_ADMIN
    admin, created = User.objects.get_or_create(
        username=username, defaults={"email": "admin@example.com", "is_staff": True, "is_superuser": True}
    )
    if created or not admin.check_password(password):
        admin.set_password(password)
        admin.is_staff = admin.is_superuser = True
        admin.save()
    engineers = []
    for login, first, last, email in DEMO_ENGINEERS:
        person, created = User.objects.get_or_create(
            username=login, defaults={"first_name": first, "last_name": last, "email": email}
        )
        if created:
            person.set_password(login)
        if person.email and not person.email_verified_at:
            # The demo's addresses are where the tour's pages go: verified, as if their owners had entered the code.
            person.email_verified_at = timezone.now()
        person.save()
        engineers.append(person)
    team, _ = Team.objects.get_or_create(name="Platform", defaults={"description": "Runs the production platform."})
    team.members.add(admin, *engineers)
    channel, _ = Channel.objects.get_or_create(
        name="Production", defaults={"team": team, "description": "Alerts from production systems."}
    )
    integration = Integration.objects.filter(name="Demo monitor").first() or Integration(name="Demo monitor")
    integration.kind = Integration.Kind.STANDARD
    integration.channel = channel
    integration.enabled = True
    integration.set_new_key(DEMO_INTEGRATION_KEY)
    integration.save()
    rule, created = EscalationRule.objects.get_or_create(
        channel=channel, name="Default", defaults={"priority": 100, "description": "Alice first, then Bob."}
    )
    if created or not rule.levels.exists():
        rule.levels.all().delete()
        first = EscalationLevel.objects.create(rule=rule, position=0, escalate_after_minutes=30)
        first.people.set([engineers[0]])
        second = EscalationLevel.objects.create(rule=rule, position=1, escalate_after_minutes=30)
        second.people.set([engineers[1]])
    return Demo(team=team, channel=channel, integration=integration, admin=admin, engineers=tuple(engineers))


class Command(BaseCommand):
    help = "Load the demo team, people, channel, integration and escalation rule (idempotent)."

    def handle(self, *args, **options) -> None:
        demo = demo_load()
        self.stdout.write(
            f"Demo data ready: channel {demo.channel.name}, integration {demo.integration.name}, "
            f"people {', '.join(p.username for p in demo.engineers)}."
        )
