"""The ingestion app's models: a CRM table it fills, and its SyncHistory, mapped
onto crm_dashboard.sync_history (the original fourteen columns)."""
from django.db import models


class HubspotContact(models.Model):
    id = models.BigIntegerField(primary_key=True)
    email = models.TextField(null=True)
    firstname = models.TextField(null=True)
    lastname = models.TextField(null=True)
    lastmodifieddate = models.DateTimeField(null=True)

    class Meta:
        managed = False
        db_table = "hubspot_contact"


class SyncHistory(models.Model):
    STATUSES = [(s, s) for s in ("queued", "running", "success", "failed", "partial", "cancelled")]

    crm_source = models.CharField(max_length=50)
    sync_type = models.CharField(max_length=100)
    endpoint = models.CharField(max_length=255, null=True)
    start_time = models.DateTimeField()
    end_time = models.DateTimeField(null=True)
    status = models.CharField(max_length=20, choices=STATUSES, default="running")
    records_processed = models.IntegerField(default=0)
    records_created = models.IntegerField(default=0)
    records_updated = models.IntegerField(default=0)
    records_failed = models.IntegerField(default=0)
    error_message = models.TextField(null=True)
    configuration = models.JSONField(null=True)
    performance_metrics = models.JSONField(null=True)

    class Meta:
        managed = False
        db_table = "sync_history"
