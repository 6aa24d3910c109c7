"""Every read of crm_api works on a hot standby: BI tools and the UI's pages can use a replica."""
import json


def read(replica, query):
    return replica.sql(query)[0][0]


def test_replica_is_in_recovery_and_its_workers_wait_quietly(standby):
    _, replica = standby
    assert read(replica, "SELECT pg_is_in_recovery()") is True
    problems = [line for line in replica.log().splitlines()
                if ("FATAL" in line or "PANIC" in line or "terminated by signal" in line)
                and "starting up" not in line]
    assert problems == []


def test_views_read_on_the_standby(standby):
    primary, replica = standby
    replica.wait_for("SELECT count(*) = 1 FROM crm_api.sync_runs")
    assert read(replica, "SELECT count(*) FROM crm_api.crm_sources") == 10
    assert replica.sql("SELECT model, estimated_rows, last_status, health FROM crm_api.crm_models") == \
        [("contact", 120, "success", "success")]
    assert read(replica, "SELECT count(*) FROM crm_api.model_columns WHERE crm = 'hubspot'") == 3
    assert read(replica, "SELECT health FROM crm_api.crm_sources WHERE crm = 'hubspot'") == "success"


def test_paging_and_counts_on_the_standby(standby):
    _, replica = standby
    page = read(replica, "SELECT crm_api.model_rows('hubspot', 'contact', per_page => 50, sort => 'lastname')")
    assert len(page["rows"]) == 50 and page["next"]
    following = read(replica, "SELECT crm_api.model_rows('hubspot', 'contact', %s, 50, NULL, 'lastname')"
                     % ("'" + page["next"] + "'"))
    assert {r["id"] for r in page["rows"]}.isdisjoint(r["id"] for r in following["rows"])
    detail = read(replica, "SELECT crm_api.model_detail('hubspot', 'contact', true)")
    assert detail["exact_rows"] == 120 and detail["latest_run"]["status"] == "success"
    assert read(replica, "SELECT crm_api.count_rows('hubspot', 'contact')") == 120
    assert read(replica, "SELECT count(*) FROM crm_api.export_rows('hubspot', 'contact', 'smith')") == 40


def test_actions_say_the_standby_is_read_only(standby):
    _, replica = standby
    conn = replica.connect()
    try:
        with conn.cursor() as cur:
            try:
                cur.execute("SELECT crm_api.start_sync('hubspot', 'contact')")
                raise AssertionError("start_sync worked on a standby")
            except Exception as e:  # noqa: BLE001 - psycopg2 error classes vary
                assert getattr(e, "pgcode", None) == "25006", e
    finally:
        conn.close()
