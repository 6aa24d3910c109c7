#!/usr/bin/python3
"""The management entry point of the test project (python3 manage.py sync_hubspot_contacts)."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ingest.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
