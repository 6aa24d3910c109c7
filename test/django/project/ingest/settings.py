"""A minimal ingestion project: one app, the database from the libpq variables
crm_dashboard's launcher gives a command (PGHOST, PGPORT, PGDATABASE, PGUSER)."""
import os

SECRET_KEY = "test-only, never deployed"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["ingest"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("PGDATABASE", "postgres"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "HOST": os.environ.get("PGHOST", ""),
        "PORT": os.environ.get("PGPORT", ""),
        # the CRM tables live in ingestion, the sync history in crm_dashboard
        "OPTIONS": {"options": "-c search_path=ingestion,crm_dashboard"},
    }
}
