"""Sync HubSpot contacts: the shape of a real ingestion command, with a fake CRM.

It takes crm_dashboard's flags, fetches pages of contacts from a stand-in for
the HubSpot API (SIM_CONTACTS contacts, SIM_PAGE per page, SIM_PAUSE seconds
per page) and writes them through the ORM, reporting progress with the
crm_dashboard helper.  SIM_FAIL makes the CRM misbehave once (while the file
SIM_FAIL_MARKER does not exist): "rate" answers 429 with a Retry-After of
SIM_RETRY_AFTER seconds, "revoked" refuses the API key.
"""
import datetime
import os
import time

from django.core.management.base import BaseCommand
from django.db import transaction

from crm_dashboard_progress import ActionRequired, RetryLater, SyncRun
from ingest.models import HubspotContact, SyncHistory


def fake_hubspot(total, page_size, since):
    """Pages of contacts as the API would return them."""
    base = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    for start in range(1, total + 1, page_size):
        yield [{"id": i, "email": f"contact{i}@example.com", "firstname": f"First{i}", "lastname": f"Last{i}",
                "lastmodifieddate": base + datetime.timedelta(minutes=i)}
               for i in range(start, min(total, start + page_size - 1) + 1)]


def misbehave_once():
    """The CRM's fault for this run, if any (only until the marker file exists)."""
    fault = os.environ.get("SIM_FAIL")
    marker = os.environ.get("SIM_FAIL_MARKER")
    if not fault or (marker and os.path.exists(marker)):
        return
    if marker:
        open(marker, "w").close()
    if fault == "rate":
        raise RetryLater("HTTP 429 Too Many Requests", retry_after=float(os.environ.get("SIM_RETRY_AFTER", "2")))
    if fault == "revoked":
        raise ActionRequired("HTTP 401: the API key was revoked", code=77)


class Command(BaseCommand):
    help = "Sync HubSpot contacts into ingestion.hubspot_contact."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true")
        parser.add_argument("--full", action="store_true")
        parser.add_argument("--since")
        parser.add_argument("--dry-run", action="store_true")
        parser.add_argument("--max-records", type=int)
        parser.add_argument("--batch-size", type=int, default=int(os.environ.get("SIM_PAGE", "25")))
        parser.add_argument("--debug", action="store_true")

    def handle(self, *args, **options):
        total = int(os.environ.get("SIM_CONTACTS", "100"))
        if options["max_records"]:
            total = min(total, options["max_records"])
        pause = float(os.environ.get("SIM_PAUSE", "0"))
        with SyncRun("hubspot", "contact", history=SyncHistory, options=options) as run:
            run.update(endpoint="/crm/v3/objects/contacts")
            run.progress(total=total)
            misbehave_once()
            for page in fake_hubspot(total, options["batch_size"], options["since"]):
                if options["dry_run"]:
                    run.add(processed=len(page))
                else:
                    created = 0
                    with transaction.atomic():
                        for c in page:
                            _, new = HubspotContact.objects.update_or_create(id=c["id"], defaults=c)
                            created += new
                    run.add(processed=len(page), created=created, updated=len(page) - created)
                if pause:
                    time.sleep(pause)
                    run.heartbeat()
            self.stderr.write(f"synced {run.counts['processed']} contacts")
