"""`manage.py bench_latency_prepare`: the bots and rules of the alert → bot webhook benchmark (after bench_prepare).

The Bench channel gets one escalation rule per shard (`labels.shard` = its number), each posting from its first
and only level to a custom-webhook bot of its own at `<hook-base>/<shard>`; nobody is paged by email or phone.
Shards exist because the platform paces each bot to its provider's rate limit (a custom webhook: 10 messages in
any second), so one bot cannot take 50 alerts a second without them waiting their turn.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from channels_app.models import Bot
from escalation.models import EscalationLevel, EscalationRule
from oncall.models import Channel

RULE_PREFIX = "Latency "
BOT_PREFIX = "bench-webhook-"


class Command(BaseCommand):
    help = "Create the webhook bots and per-shard escalation rules of the alert → bot benchmark."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--bots", type=int, default=10)
        parser.add_argument("--hook-base", required=True, help="e.g. http://127.0.0.1:8099/hook")

    @transaction.atomic
    def handle(self, *args, bots: int, hook_base: str, **options) -> None:
        channel = Channel.objects.get(name="Bench")
        EscalationRule.objects.filter(channel=channel, name__startswith=RULE_PREFIX).delete()
        Bot.objects.filter(name__startswith=BOT_PREFIX).delete()
        for shard in range(bots):
            bot = Bot.objects.create(name=f"{BOT_PREFIX}{shard}", kind="webhook", url=f"{hook_base}/{shard}")
            rule = EscalationRule.objects.create(
                channel=channel,
                name=f"{RULE_PREFIX}{shard}",
                priority=shard,
                filters=[[{"key": "labels.shard", "op": "IN", "values": [str(shard)]}]],
            )
            level = EscalationLevel.objects.create(
                rule=rule, position=0, critical_methods=[], escalate_after_minutes=60
            )
            level.bots.set([bot])
        self.stdout.write(f"{bots} webhook bot(s) at {hook_base}/<shard>")
