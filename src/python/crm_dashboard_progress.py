"""Report a sync command's progress to crm_dashboard, and keep one history row.

A sync command (a Django management command, or any Python program) uses one
object for its run::

    from crm_dashboard_progress import SyncRun, RetryLater, ActionRequired

    class Command(BaseCommand):
        def handle(self, *args, **options):
            with SyncRun("hubspot", "contact", history=SyncHistory, options=options) as run:
                for page in pages():
                    ...                                  # write the records
                    run.add(processed=len(page), created=new, updated=len(page) - new)
                    run.progress(total=expected)         # or absolute counters
                # leaving the block prints the summary and finishes the row

What it does depends on who started the command:

* **Started by crm_dashboard** (``CRM_DASHBOARD_SYNC_ID`` is set): the launcher
  already keeps the run's row in ``crm_dashboard.sync_history``.  Every call
  prints one JSON line on stdout that the launcher turns into live progress,
  and ``run.history`` is that row, fetched, never a second one inserted.  The
  launcher decides the outcome from the exit status; status and counters are
  its to write.
* **Started by hand or by cron**: with ``history=`` (a model mapped onto the
  sync history table) the helper inserts the row itself, keeps its counters
  up to date (at most once per ``min_interval`` seconds) and finishes it,
  as the command did before; the JSON lines are printed all the same.

The lines follow the progress protocol of crm_dashboard::

    {"event": "progress", "processed": 500, "created": 120, "updated": 380, "failed": 0, "total": 2000}
    {"event": "error", "message": "email invalid", "record": "51000017"}
    {"event": "error", "message": "API key revoked", "retryable": false}
    {"event": "rate_limited", "retry_after": 52, "message": "HTTP 429 Too Many Requests"}
    {"event": "heartbeat"}
    {"event": "summary", "processed": 2000, "created": 480, "updated": 1500, "failed": 20}

Errors that say what to do next end the command with a ``sysexits.h`` status:
``raise RetryLater(message, retry_after=52)`` exits 75 (``EX_TEMPFAIL``; with
``retry_after``, after a ``rate_limited`` line, so crm_dashboard retries when
the wait ends without using up an attempt); ``raise ActionRequired(message)``
exits 78 (``EX_CONFIG``; ``ActionRequired(message, code=77)`` for
``EX_NOPERM``) after an error line with ``"retryable": false``, so the model
shows "action required" and is not retried.  Any other exception is a
retryable failure.

The module needs only the standard library (Django only when ``history`` is
given).  crm_dashboard installs it as
``$(pg_config --sharedir)/extension/crm_dashboard_python/crm_dashboard_progress.py``;
put that directory on ``PYTHONPATH`` (the sync command registry's
``environment`` can do it) or copy the file into your project.
"""
import datetime
import json
import math
import os
import sys
import time

__all__ = ["SyncRun", "RetryLater", "ActionRequired", "EX_TEMPFAIL", "EX_NOPERM", "EX_CONFIG"]

# sysexits.h
EX_TEMPFAIL = 75
EX_NOPERM = 77
EX_CONFIG = 78

COUNTERS = ("processed", "created", "updated", "failed", "total")


class RetryLater(Exception):
    """A temporary failure: exit 75; after ``retry_after`` seconds when the CRM said so."""

    def __init__(self, message, retry_after=None):
        super().__init__(message)
        self.retry_after = retry_after


class ActionRequired(Exception):
    """A failure retrying cannot fix (a revoked key, a bad setting): exit 78, or 77."""

    def __init__(self, message, code=EX_CONFIG):
        super().__init__(message)
        self.code = code


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


class SyncRun:
    """One run of a sync command: its counters, its JSON lines, its history row."""

    def __init__(self, crm_source, sync_type, history=None, options=None, stream=None, min_interval=1.0,
                 environ=None):
        env = os.environ if environ is None else environ
        self.crm_source = crm_source
        self.sync_type = sync_type
        self.options = dict(options or {})
        self.stream = stream or sys.stdout
        self.min_interval = min_interval
        self.counts = {"processed": 0, "created": 0, "updated": 0, "failed": 0, "total": None}
        self.sync_id = int(env["CRM_DASHBOARD_SYNC_ID"]) if env.get("CRM_DASHBOARD_SYNC_ID") else None
        self.history_model = history
        self.history = None
        self._saved_at = 0.0
        self._finished = False

    # -- who keeps the row --------------------------------------------------

    @property
    def under_dashboard(self):
        """True when crm_dashboard started this run (and keeps its row)."""
        return self.sync_id is not None

    def start(self):
        """Find the dashboard's row, or insert our own (standalone with a history model)."""
        if self.history_model is not None:
            if self.under_dashboard:
                self.history = self.history_model.objects.get(pk=self.sync_id)
            else:
                self.history = self.history_model.objects.create(
                    crm_source=self.crm_source, sync_type=self.sync_type, status="running",
                    start_time=_now(), configuration={"options": _jsonable(self.options)})
        return self

    def update(self, **fields):
        """Write other fields of the row (such as endpoint); status and counters are the launcher's."""
        if self.history is None:
            return
        if self.under_dashboard:
            owned = {"status", "start_time", "end_time", "error_message", "performance_metrics"}.union(
                "records_" + c for c in COUNTERS)
            taken = owned.intersection(fields)
            if taken:
                raise ValueError("crm_dashboard writes %s of this run" % ", ".join(sorted(taken)))
        self.history_model.objects.filter(pk=self.history.pk).update(**fields)
        for name, value in fields.items():
            setattr(self.history, name, value)

    # -- the protocol ---------------------------------------------------------

    def emit(self, event, **fields):
        """Print one JSON line of the progress protocol."""
        line = json.dumps(dict(event=event, **fields), default=str, separators=(", ", ": "))
        self.stream.write(line + "\n")
        self.stream.flush()

    def progress(self, processed=None, created=None, updated=None, failed=None, total=None):
        """Say the counters so far (absolute values; those not given stay as they were)."""
        for name, value in zip(COUNTERS, (processed, created, updated, failed, total)):
            if value is not None:
                self.counts[name] = _count(name, value)
        self.emit("progress", **{k: v for k, v in self.counts.items() if v is not None})
        self._save(final=False)

    def add(self, processed=0, created=0, updated=0, failed=0):
        """Add to the counters and say them."""
        for name, value in (("processed", processed), ("created", created), ("updated", updated),
                            ("failed", failed)):
            self.counts[name] += _count(name, value)
        self.progress()

    def error(self, message, record=None, retryable=None):
        """Report one failed record or step (retryable=False: the run needs action, not retries)."""
        fields = {"message": str(message)}
        if record is not None:
            fields["record"] = record if isinstance(record, (int, float)) else str(record)
        if retryable is not None:
            fields["retryable"] = bool(retryable)
        self.emit("error", **fields)

    def heartbeat(self):
        """Say the command is alive while it has nothing else to say (keeps it from stalling)."""
        self.emit("heartbeat")

    def rate_limited(self, retry_after, message="", wait=False):
        """Say the CRM's rate limit holds the run for retry_after seconds (and wait them out, if wait)."""
        retry_after = float(retry_after)
        if math.isnan(retry_after) or retry_after < 0:
            raise ValueError("retry_after must be a number of seconds, not %r" % retry_after)
        self.emit("rate_limited", retry_after=retry_after, message=str(message))
        if wait:
            time.sleep(retry_after)

    def summary(self):
        """Say the final counters."""
        self.emit("summary", **{k: v for k, v in self.counts.items() if v is not None})

    # -- the run as a block -----------------------------------------------------

    def __enter__(self):
        return self.start()

    def __exit__(self, kind, exc, tb):
        if self._finished:
            return False
        self._finished = True
        if exc is None:
            self.summary()
            self._finish("partial" if self.counts["failed"] else "success", None)
            return False
        if isinstance(exc, RetryLater):
            if exc.retry_after is not None:
                self.rate_limited(exc.retry_after, str(exc))
            else:
                self.error(str(exc))
            self._finish("failed", str(exc))
            raise SystemExit(EX_TEMPFAIL) from exc
        if isinstance(exc, ActionRequired):
            self.error(str(exc), retryable=False)
            self._finish("failed", str(exc))
            raise SystemExit(exc.code) from exc
        if not isinstance(exc, SystemExit):
            self.error("%s: %s" % (type(exc).__name__, exc))
            self._finish("failed", "%s: %s" % (type(exc).__name__, exc))
        return False

    # -- our own row, when nobody else keeps it --------------------------------

    def _save(self, final):
        if self.history is None or self.under_dashboard:
            return
        now = time.monotonic()
        if not final and now - self._saved_at < self.min_interval:
            return
        self._saved_at = now
        fields = {"records_" + k: (v or 0) for k, v in self.counts.items() if k != "total"}
        self.history_model.objects.filter(pk=self.history.pk).update(**fields)

    def _finish(self, status, message):
        if self.history is None or self.under_dashboard:
            return
        self._save(final=True)
        self.history_model.objects.filter(pk=self.history.pk).update(
            status=status, end_time=_now(), error_message=message)


def _count(name, value):
    value = int(value)
    if value < 0:
        raise ValueError("%s must not be negative, not %d" % (name, value))
    return value


def _jsonable(options):
    """Options as JSON can hold them (dates as text)."""
    return json.loads(json.dumps(options, default=str))
