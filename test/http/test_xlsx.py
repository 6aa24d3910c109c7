"""The Excel export: export_rows answers the xlsx media type with a workbook.

Each workbook is opened with openpyxl, a real reader: the cells' types and
values, the header, the row count, the frozen header and autofilter, and
what Excel's limits cut (with the Notes sheet saying so).
"""
import datetime
import io
import json
import zipfile

import openpyxl
import pytest

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LONG = "é" * 40000

TYPED_SQL = """
CREATE TABLE IF NOT EXISTS ingestion.hubspot_typed (
    id bigint PRIMARY KEY, name text, amount numeric(12, 2), qty integer, ratio float8,
    exact numeric, ok boolean, day date, at timestamptz, local_at timestamp, doc jsonb,
    formula text, long text, tags text[]);
TRUNCATE ingestion.hubspot_typed;
INSERT INTO ingestion.hubspot_typed
SELECT g, 'name ' || g, g * 10.5, g, g / 4.0, 12345678901234567890.5, g % 2 = 0,
       date '2024-03-01' + g, timestamptz '2024-03-01 12:30:00+00' + g * interval '1 hour',
       timestamp '2024-03-01 08:00:00' + g * interval '1 minute',
       jsonb_build_object('n', g), CASE WHEN g = 1 THEN '=HYPERLINK("http://evil")' ELSE '+1' END,
       CASE WHEN g = 2 THEN repeat('é', 40000) END, ARRAY['a', 'b']
  FROM generate_series(1, 40) g;
UPDATE ingestion.hubspot_typed SET name = NULL, amount = NULL, ok = NULL, day = NULL WHERE id = 3;
ANALYZE ingestion.hubspot_typed;
"""


@pytest.fixture(scope="module")
def typed(cluster):
    cluster.sql(TYPED_SQL)
    yield
    cluster.sql("DROP TABLE ingestion.hubspot_typed")


def workbook(r):
    assert r.status == 200, r
    assert r.header("Content-Type") == XLSX
    return openpyxl.load_workbook(io.BytesIO(r.body))


def export(api, body, user="vera"):
    return api.post("/api/rpc/export_rows", body, user=user, headers={"Accept": XLSX})


def test_typed_cells(api, cluster, typed):
    r = export(api, {"crm": "hubspot", "model": "typed", "sort": "id"})
    assert r.header("Content-Disposition") == 'attachment; filename="hubspot_typed.xlsx"'
    wb = workbook(r)
    assert wb.sheetnames == ["typed", "Notes"]
    ws = wb["typed"]
    zone = cluster.sql("SELECT current_setting('TimeZone')")[0][0]
    header = [c.value for c in ws[1]]
    assert header == ["id", "name", "amount", "qty", "ratio", "exact", "ok", "day", f"at ({zone})",
                      "local_at", "doc", "formula", "long", "tags"]
    assert ws.max_row == 41
    row = [c.value for c in ws[2]]
    assert row[0] == 1 and isinstance(row[0], int)
    assert row[1] == "name 1"
    assert row[2] == 10.5 and row[3] == 1 and row[4] == 0.25
    # more digits than a double holds: the exact text, not a rounded number
    assert row[5] == "12345678901234567890.5"
    assert row[6] is False and ws.cell(3, 7).value is True
    assert row[7] == datetime.datetime(2024, 3, 2)
    assert ws.cell(2, 8).number_format == "yyyy-mm-dd"
    expected_at = cluster.sql(
        "SELECT (timestamptz '2024-03-01 13:30:00+00' AT TIME ZONE current_setting('TimeZone'))::text")[0][0]
    assert row[8] == datetime.datetime.fromisoformat(expected_at)
    assert row[9] == datetime.datetime(2024, 3, 1, 8, 1)
    assert json.loads(row[10]) == {"n": 1}
    # a formula is written as the text it is
    assert row[11] == '=HYPERLINK("http://evil")' and ws.cell(2, 12).data_type == "s"
    assert ws.cell(3, 12).value == "+1" and ws.cell(3, 12).data_type == "s"
    assert row[13] == "{a,b}"
    # NULL is an empty cell
    assert [ws.cell(4, c).value for c in (2, 3, 7, 8)] == [None, None, None, None]
    # no cell of the file is a formula
    with zipfile.ZipFile(io.BytesIO(r.body)) as z:
        assert b"<f>" not in z.read("xl/worksheets/sheet1.xml")


def test_layout_and_limits(api, typed):
    r = export(api, {"crm": "hubspot", "model": "typed", "sort": "id"})
    wb = workbook(r)
    ws = wb["typed"]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:N41"
    # widths from the header and the first rows
    assert ws.column_dimensions["B"].width >= len("name 10")
    assert ws.column_dimensions["A"].width < ws.column_dimensions["B"].width
    assert ws.column_dimensions["M"].width < 61
    # a cell over 32,767 characters is cut at a character, and the Notes sheet says so
    assert ws.cell(3, 13).value == LONG[:32767]
    notes = [c.value for c in wb["Notes"]["A"]]
    assert len(notes) == 1 and "32767" in notes[0] and "column long, row 3" in notes[0]
    assert "32767" in r.header("Export-Note")


def test_filter_sort_and_paging_args(api, typed):
    body = {"crm": "hubspot", "model": "typed", "sort": "amount", "descending": True,
            "filter": {"or": [{"column": "qty", "op": "lt", "value": 5},
                              {"column": "day", "op": "gte", "value": "2024-04-08"}]}}
    as_json = api.post("/api/rpc/export_rows", body, user="vera").json()
    wb = workbook(export(api, body))
    ids = [c.value for c in wb["typed"]["A"]][1:]
    assert ids == [x["id"] for x in as_json] and ids == [40, 39, 38, 4, 2, 1, 3]
    r = api.get("/api/rpc/export_rows?crm=hubspot&model=typed&sort=id&limit=3&offset=10", user="vera",
                headers={"Accept": XLSX})
    wb = workbook(r)
    assert wb.sheetnames == ["typed"] and r.header("Export-Note") is None   # nothing was cut: no notes
    ws = wb["typed"]
    assert [c.value for c in ws["A"]] == ["id", 11, 12, 13]
    assert ws.auto_filter.ref == "A1:N4"


def test_empty_export_is_a_valid_workbook(api, typed):
    wb = workbook(export(api, {"crm": "hubspot", "model": "typed",
                               "filter": {"column": "qty", "op": "gt", "value": 1000}}))
    ws = wb["typed"]
    assert ws.max_row == 1 and ws.cell(1, 1).value == "id"


def test_xlsx_only_for_the_export(api, typed):
    r = api.get("/api/crm_sources", user="vera", headers={"Accept": XLSX})
    assert r.status == 406 and r.json()["code"] == "PGRST107"
    r = api.post("/api/rpc/count_rows", {"crm": "hubspot", "model": "typed"}, user="vera",
                 headers={"Accept": XLSX})
    assert r.status == 406 and r.json()["code"] == "PGRST107"


def test_xlsx_errors_and_authorisation(api, typed):
    r = api.post("/api/rpc/export_rows", {"crm": "hubspot", "model": "typed"}, headers={"Accept": XLSX})
    assert r.status == 401
    r = export(api, {"crm": "hubspot", "model": "typed", "filter": {"column": "nope", "op": "is_null"}})
    assert r.status == 400 and r.json()["code"] == "42703"
    assert "nope" in r.json()["message"] and r.header("Content-Type").startswith("application/json")
    r = export(api, {"crm": "hubspot", "model": "typed", "filter": {"column": "qty", "op": "eq", "value": "x"}})
    assert r.status == 400 and r.json()["code"] == "22P02"


def test_values_excel_cannot_hold_stay_text(api, cluster):
    cluster.sql("""
        CREATE TABLE ingestion.hubspot_edge (id bigint PRIMARY KEY, big bigint, d date, ts timestamp, f float8, t time);
        INSERT INTO ingestion.hubspot_edge VALUES
            (1, 9007199254740993, '1850-01-01', 'infinity', 'NaN', '13:45:30'),
            (2, -5, 'infinity', '2024-02-29 23:59:59', 1.5, NULL);
        ANALYZE ingestion.hubspot_edge""")
    try:
        ws = workbook(export(api, {"crm": "hubspot", "model": "edge", "sort": "id"}))["edge"]
        assert ws.cell(2, 1).value == 1
        assert ws.cell(2, 2).value == "9007199254740993" and ws.cell(2, 2).data_type == "s"
        assert ws.cell(2, 3).value == "1850-01-01" and ws.cell(2, 4).value == "infinity"
        assert ws.cell(2, 5).value == "NaN"
        assert ws.cell(2, 6).value == datetime.time(13, 45, 30)
        assert ws.cell(3, 2).value == -5 and ws.cell(3, 3).value == "infinity"
        assert ws.cell(3, 4).value == datetime.datetime(2024, 2, 29, 23, 59, 59)
        assert ws.cell(3, 5).value == 1.5 and ws.cell(3, 6).value is None
    finally:
        cluster.sql("DROP TABLE ingestion.hubspot_edge")
