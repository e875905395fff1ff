"""Schedule times (layer starts and ends, overrides) are kept between the years 1970 and 9998 in UTC. Before, a time
such as "until 9999-12-31 23:00" in New York (year 10000 in UTC) could be saved on PostgreSQL, and from then on no
process could read the row: the schedule's admin pages failed and every escalation level paging the schedule
crashed. Such times, which no one could ever have seen or used, are brought back inside the range, to its nearest
end, so those schedules work again and can be edited."""

from datetime import UTC, datetime

from django.db import migrations, models

import escalation.models.schedules

# Inside the range as escalation.models.schedules had it when this was written (a migration must not follow later
# changes), a minute apart so that each start stays before its end (a check constraint).
FIRST_START, FIRST_END = datetime(1970, 1, 1, 0, 0, tzinfo=UTC), datetime(1970, 1, 1, 0, 1, tzinfo=UTC)
LAST_START, LAST_END = datetime(9998, 12, 31, 23, 58, tzinfo=UTC), datetime(9998, 12, 31, 23, 59, tzinfo=UTC)
# Beyond these, a row holds what a datetime cannot: the row cannot be read.
TOO_EARLY = datetime.min.replace(tzinfo=UTC)
TOO_LATE = datetime.max.replace(tzinfo=UTC)


def bring_unreadable_times_into_range(apps, schema_editor):
    for name in ("Layer", "Override"):
        model = apps.get_model("escalation", name)
        # A start past the range has its end past it too (the end comes after it); an end before it, its start.
        late = model.objects.filter(end__gt=TOO_LATE)
        late.filter(start__gt=LAST_START).update(start=LAST_START)
        late.update(end=LAST_END)
        model.objects.filter(start__gt=TOO_LATE).update(start=LAST_START)  # a layer with no end
        early = model.objects.filter(start__lt=TOO_EARLY)
        early.filter(end__lt=FIRST_END).update(end=FIRST_END)
        early.update(start=FIRST_START)


class Migration(migrations.Migration):
    dependencies = [
        ("escalation", "0008_escalationstate_recovered"),
    ]

    operations = [
        migrations.AlterField(
            model_name="layer",
            name="end",
            field=models.DateTimeField(
                blank=True,
                help_text="Empty: the layer runs on.",
                null=True,
                validators=[escalation.models.schedules.validate_schedule_time],
                verbose_name="end",
            ),
        ),
        migrations.AlterField(
            model_name="layer",
            name="start",
            field=models.DateTimeField(
                help_text="The first group's first shift begins here. For day, week and month rotations its time of "
                "day is the handoff time, in the schedule's time zone.",
                validators=[escalation.models.schedules.validate_schedule_time],
                verbose_name="start",
            ),
        ),
        migrations.AlterField(
            model_name="override",
            name="end",
            field=models.DateTimeField(
                validators=[escalation.models.schedules.validate_schedule_time], verbose_name="end"
            ),
        ),
        migrations.AlterField(
            model_name="override",
            name="start",
            field=models.DateTimeField(
                validators=[escalation.models.schedules.validate_schedule_time], verbose_name="start"
            ),
        ),
        migrations.RunPython(bring_unreadable_times_into_range, migrations.RunPython.noop),
    ]
