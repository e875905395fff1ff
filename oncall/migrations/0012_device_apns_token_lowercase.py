"""iOS (APNs) device tokens are hex, linked until now in whichever case the app sent: "AB…" and "ab…" were two
devices of the same phone (pushed twice, or still paging the phone's previous owner). Lower-case them all, as
linking now does, and merge the rows that then name the same phone into the most recently linked one."""

import hashlib

from django.db import migrations


def _token_hash(platform: str, token: str) -> str:
    # As oncall.services.devices._token_hash at the time of writing (a migration must not follow later changes).
    return hashlib.sha256(f"{platform}:{token}".encode()).hexdigest()


def lowercase_apns_tokens(apps, schema_editor):
    Device = apps.get_model("oncall", "Device")
    phones: dict[str, list] = {}
    for device in Device.objects.filter(platform="ios").order_by("created_at", "pk"):
        phones.setdefault(device.token.lower(), []).append(device)
    for token, devices in phones.items():
        # The last linked row wins (its owner, name and version); the others go first, as token_hash is unique.
        keep, others = devices[-1], devices[:-1]
        if others:
            Device.objects.filter(pk__in=[device.pk for device in others]).delete()
        if keep.token != token:
            keep.token = token
            keep.token_hash = _token_hash("ios", token)
            keep.save(update_fields=["token", "token_hash"])


class Migration(migrations.Migration):
    dependencies = [
        ("oncall", "0011_alter_incidentevent_kind"),
    ]

    operations = [
        migrations.RunPython(lowercase_apns_tokens, migrations.RunPython.noop),
    ]
