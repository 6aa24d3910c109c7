"""Helpers for tests that run sync commands through the launcher: register
commands, start runs, wait for them, find the launcher."""
import json
import time


class Launcher:
    """The cluster plus helpers for registering commands and waiting for runs."""

    def __init__(self, cluster):
        self.c = cluster

    def sql(self, q, params=None, user="postgres"):
        return self.c.sql(q, params, user=user)

    def one(self, q, params=None, user="postgres"):
        return self.c.sql(q, params, user=user)[0][0]

    def register(self, crm, argv, model=None, timeout=None, env=None, workdir=None):
        self.sql("INSERT INTO crm_dashboard.sync_command (crm, model, argv, timeout, environment, working_directory) "
                 "VALUES (%s, %s, %s, %s, %s, %s)",
                 (crm, model, argv, timeout, json.dumps(env or {}), workdir))


    def start(self, crm, model, options=None, user="postgres"):
        return self.one("SELECT crm_api.start_sync(%s, %s, %s)", (crm, model, json.dumps(options or {})), user=user)

    def run(self, run_id):
        return self.one("SELECT crm_api.sync_status(%s)", (run_id,))

    def log(self, run_id):
        return self.one("SELECT crm_api.sync_log(%s)", (run_id,))

    def wait(self, run_id, statuses=("success", "failed", "partial", "cancelled"), timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            run = self.run(run_id)
            if run["status"] in statuses:
                return run
            time.sleep(0.05)
        raise AssertionError(f"run {run_id} still {self.run(run_id)['status']} after {timeout}s")

    def launcher_pid(self):
        rows = self.sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'crm_dashboard sync launcher'")
        return rows[0][0] if rows else None

    def wait_launcher(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                pid = self.launcher_pid()
                if pid:
                    return pid
            except Exception:
                pass
            time.sleep(0.1)
        raise AssertionError("the launcher did not start")
