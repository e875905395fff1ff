"""User mapping tables: importing and exporting their entries as CSV."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from channels_app.bots.mapping import csv_parse, csv_write
from channels_app.models import MappingEntry, MappingTable


@dataclass(frozen=True)
class ImportReport:
    created: int
    updated: int
    deleted: int


def mapping_table_import(*, table: MappingTable, text: str, replace: bool) -> ImportReport:
    """Import `email,im_id` rows into `table`: add new emails, update known ones (emails match whatever their
    case) and, with `replace`, delete the entries the file does not list. A file with any bad line changes
    nothing: mapping.CsvErrors lists every bad line with its number."""
    rows = csv_parse(text, platform=table.platform)
    with transaction.atomic():
        existing = {
            entry.email.lower(): entry for entry in MappingEntry.objects.select_for_update().filter(table=table)
        }
        created, updated = [], []
        for row in rows:
            entry = existing.pop(row.email.lower(), None)
            if entry is None:
                created.append(MappingEntry(table=table, email=row.email, im_id=row.im_id))
            elif entry.im_id != row.im_id or entry.email != row.email:
                entry.im_id, entry.email = row.im_id, row.email
                updated.append(entry)
        deleted = 0
        if replace and existing:
            deleted, _ = MappingEntry.objects.filter(pk__in=[entry.pk for entry in existing.values()]).delete()
        MappingEntry.objects.bulk_update(updated, ["email", "im_id"], batch_size=500)
        MappingEntry.objects.bulk_create(created, batch_size=500)
    return ImportReport(len(created), len(updated), deleted)


def mapping_table_export(*, table: MappingTable) -> str:
    """The table as CSV (`email,im_id`, a header line first), sorted by email: what the import reads back."""
    rows = table.entries.order_by("email").values_list("email", "im_id")
    return csv_write([(email, im_id) for email, im_id in rows])
