-- model_rows, export_rows, count_rows: keyset pages of a model's rows.
-- Fixtures live in schema ingestion and are dropped at the end.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS ingestion CASCADE;
RESET client_min_messages;
CREATE SCHEMA ingestion;

-- 30 contacts: duplicate and NULL cities and scores, and values that break naive code.
CREATE TABLE ingestion.hubspot_contact (
    id text PRIMARY KEY,
    email text,
    firstname varchar(50),
    city text,
    score integer,
    createdate timestamptz,
    archived boolean NOT NULL DEFAULT false
);
INSERT INTO ingestion.hubspot_contact
SELECT 'c' || lpad(i::text, 2, '0'),
       'user' || i || '@example.com',
       (ARRAY['Ann', 'Bob', 'O''Brien', '<script>alert(1)</script>', 'Zoë 🚀'])[i % 5 + 1],
       CASE WHEN i % 4 = 0 THEN NULL ELSE (ARRAY['Austin', 'Boston', 'Chicago'])[i % 3 + 1] END,
       CASE WHEN i % 7 = 0 THEN NULL ELSE i % 5 END,
       timestamptz '2024-01-01 00:00+00' + i * interval '1 day',
       i % 2 = 0
  FROM generate_series(1, 30) i;
UPDATE ingestion.hubspot_contact SET city = '100%_off\deals' WHERE id = 'c05';
UPDATE ingestion.hubspot_contact SET city = '100 percent off' WHERE id = 'c06';

-- A composite primary key.
CREATE TABLE ingestion.hubspot_deal (
    pipeline text,
    deal_no integer,
    amount numeric(12, 2),
    dealstage text,
    PRIMARY KEY (pipeline, deal_no)
);
INSERT INTO ingestion.hubspot_deal
SELECT (ARRAY['default', 'renewals'])[i % 2 + 1], i / 2, CASE WHEN i % 3 = 0 THEN NULL ELSE i * 10.5 END,
       (ARRAY['won', 'lost', 'open'])[i % 3 + 1]
  FROM generate_series(1, 17) i;

-- No primary key, and a column name that needs quoting.
CREATE TABLE ingestion.five9_contact (number1 text, "List ""Name""; x" text);
INSERT INTO ingestion.five9_contact
SELECT '555-01' || lpad(i::text, 2, '0'), CASE WHEN i % 3 = 0 THEN NULL ELSE 'N' || i % 4 END
  FROM generate_series(1, 11) i;

-- A partitioned table without primary key: ctid alone is not unique.
CREATE TABLE ingestion.hubspot_appointment (id integer, region text) PARTITION BY LIST (region);
CREATE TABLE ingestion.hubspot_appointment_east PARTITION OF ingestion.hubspot_appointment FOR VALUES IN ('east');
CREATE TABLE ingestion.hubspot_appointment_west PARTITION OF ingestion.hubspot_appointment FOR VALUES IN ('west');
INSERT INTO ingestion.hubspot_appointment
SELECT i, CASE WHEN i % 3 = 0 THEN 'east' ELSE 'west' END FROM generate_series(1, 9) i;

-- Types without an ordering, and no text column at all.
CREATE TABLE ingestion.arrivy_group (id bigint PRIMARY KEY, doc json, spot point, size integer);
INSERT INTO ingestion.arrivy_group VALUES (1, '{"a": 1}', '(1,2)', 3), (2, '[]', '(0,0)', NULL);

-- A table that is not a model of any CRM.
CREATE TABLE ingestion.django_migrations (id integer PRIMARY KEY);
ANALYZE ingestion.hubspot_contact, ingestion.hubspot_deal, ingestion.five9_contact;

-- The identity of a row of the page: the named fields joined by ':'.
CREATE FUNCTION pg_temp.row_key(r json, fields text[]) RETURNS text LANGUAGE sql AS
$$ SELECT string_agg(r->>f, ':' ORDER BY o) FROM unnest(fields) WITH ORDINALITY u(f, o) $$;

-- Walk every page forward, then back from the last page following
-- "previous": rows in forward order, whether each backward page equals its
-- forward page (and the walk ends on the first page), and the page count.
CREATE FUNCTION pg_temp.walk(p_crm text, p_model text, p_per_page integer, p_sort text,
                             p_desc boolean, p_search text, p_fields text[],
                             OUT keys text[], OUT back_same boolean, OUT pages integer)
LANGUAGE plpgsql AS $$
DECLARE
    page json;
    cur text;
    seen text[];
    texts text[] := '{}';
    t text;
BEGIN
    keys := '{}';
    LOOP
        page := crm_api.model_rows(p_crm, p_model, cur, p_per_page, p_search, p_sort, p_desc);
        IF cur IS NULL AND page->>'previous' IS NOT NULL THEN
            RAISE EXCEPTION 'the first page has a previous cursor';
        END IF;
        SELECT coalesce(array_agg(pg_temp.row_key(r, p_fields)), '{}') INTO seen
          FROM json_array_elements(page->'rows') r;
        keys := keys || seen;
        texts := texts || array_to_string(seen, ',');
        cur := page->>'next';
        EXIT WHEN cur IS NULL;
    END LOOP;
    pages := cardinality(texts);
    back_same := true;
    cur := page->>'previous';
    FOR i IN REVERSE pages - 1 .. 1 LOOP
        page := crm_api.model_rows(p_crm, p_model, cur, p_per_page, p_search, p_sort, p_desc);
        SELECT string_agg(pg_temp.row_key(r, p_fields), ',') INTO t
          FROM json_array_elements(page->'rows') r;
        back_same := back_same AND t = texts[i];
        cur := page->>'previous';
    END LOOP;
    back_same := back_same AND cur IS NULL;
END
$$;

-- base64url of a text, to forge cursors.
CREATE FUNCTION pg_temp.b64url(t text) RETURNS text LANGUAGE sql AS
$$ SELECT translate(encode(convert_to(t, 'UTF8'), 'base64'), E'+/=\n', '-_') $$;

-- The first page: columns, rows in key order, cursors.
SELECT c FROM json_array_elements(crm_api.model_rows('hubspot', 'contact', per_page => 3)->'columns') c;
SELECT json_array_length(p->'rows') AS n, p->'rows'->0->>'id' AS first_id,
       p->>'next' IS NOT NULL AS has_next, p->'previous' AS previous,
       p->'estimated_total' AS estimated_total, p->'per_page' AS per_page,
       p->'sort' AS sort, p->'descending' AS descending, p->'note' AS note
  FROM crm_api.model_rows('hubspot', 'contact', per_page => 3) p;
-- Defaults (also for NULL arguments): 25 rows by primary key.
SELECT json_array_length(p->'rows') AS n, p->'per_page' AS per_page, p->'sort' AS sort
  FROM crm_api.model_rows('hubspot', 'contact') p;
SELECT json_array_length(p->'rows') AS n, p->'per_page' AS per_page, p->'descending' AS descending
  FROM crm_api.model_rows('hubspot', 'contact', NULL, NULL, NULL, NULL, NULL) p;
-- Rows keep the table's column order; quotes, markup and emoji are JSON-escaped text.
SELECT r FROM json_array_elements(
    crm_api.model_rows('hubspot', 'contact', per_page => 5, sort => 'id')->'rows') r;

-- Forward through every page and back again, in both directions and several
-- page sizes, through duplicate and NULL sort values; compared with ORDER BY.
SELECT s.sort, s.descending, s.per_page,
       w.keys = s.expected AS same_as_order_by, w.back_same, w.pages
  FROM (VALUES
        (NULL, false, 7, (SELECT array_agg(id ORDER BY id) FROM ingestion.hubspot_contact)),
        (NULL, true, 7, (SELECT array_agg(id ORDER BY id DESC) FROM ingestion.hubspot_contact)),
        ('city', false, 4, (SELECT array_agg(id ORDER BY city IS NULL, city, id) FROM ingestion.hubspot_contact)),
        ('city', true, 4, (SELECT array_agg(id ORDER BY city IS NULL, city DESC, id DESC) FROM ingestion.hubspot_contact)),
        ('score', false, 1, (SELECT array_agg(id ORDER BY score IS NULL, score, id) FROM ingestion.hubspot_contact)),
        ('score', true, 3, (SELECT array_agg(id ORDER BY score IS NULL, score DESC, id DESC) FROM ingestion.hubspot_contact)),
        ('score', false, 30, (SELECT array_agg(id ORDER BY score IS NULL, score, id) FROM ingestion.hubspot_contact)),
        ('score', true, 1000, (SELECT array_agg(id ORDER BY score IS NULL, score DESC, id DESC) FROM ingestion.hubspot_contact)),
        ('createdate', true, 8, (SELECT array_agg(id ORDER BY createdate DESC, id DESC) FROM ingestion.hubspot_contact)),
        ('archived', false, 6, (SELECT array_agg(id ORDER BY archived, id) FROM ingestion.hubspot_contact))
       ) s(sort, descending, per_page, expected),
       pg_temp.walk('hubspot', 'contact', s.per_page, s.sort, s.descending, NULL, '{id}') w;

-- A page that ends just before the NULLs points into them; going back from the NULLs returns to values.
SELECT p->'rows'->0->>'city' AS city, p->'rows'->1->'city' AS next_city
  FROM crm_api.model_rows('hubspot', 'contact', sort => 'city', per_page => 2,
         after => (SELECT p1->>'next' FROM crm_api.model_rows('hubspot', 'contact', sort => 'city', per_page => 22) p1)) p;

-- A cursor is a position, not a page number: other page sizes and deleted rows are fine.
SELECT crm_api.model_rows('hubspot', 'contact', per_page => 5)->>'next' AS after_c05 \gset
SELECT crm_api.model_rows('hubspot', 'contact', per_page => 5, after => :'after_c05')->>'previous' AS before_c06 \gset
BEGIN;
DELETE FROM ingestion.hubspot_contact WHERE id IN ('c05', 'c06');
SELECT p->'rows'->0->>'id' AS first_id, p->'rows'->2->>'id' AS third_id
  FROM crm_api.model_rows('hubspot', 'contact', per_page => 3, after => :'after_c05') p;
-- Past the last row: an empty page that still leads back.
SELECT crm_api.model_rows('hubspot', 'contact', per_page => 25)->>'next' AS after_c25 \gset
DELETE FROM ingestion.hubspot_contact WHERE id > 'c25';
SELECT p->'rows' AS rows, p->'next' AS next, p->>'previous' IS NOT NULL AS has_previous
  FROM crm_api.model_rows('hubspot', 'contact', per_page => 25, after => :'after_c25') p;
SELECT json_array_length(p->'rows') AS n, p->'rows'->0->>'id' AS first_id, p->'rows'->-1->>'id' AS last_id
  FROM crm_api.model_rows('hubspot', 'contact', per_page => 25,
         after => (SELECT q->>'previous' FROM crm_api.model_rows('hubspot', 'contact', per_page => 25, after => :'after_c25') q)) p;
ROLLBACK;
-- Going back past the start gives a full first page without a previous cursor.
SELECT json_array_length(p->'rows') AS n, p->'rows'->0->>'id' AS first_id, p->'previous' AS previous,
       p->>'next' IS NOT NULL AS has_next
  FROM crm_api.model_rows('hubspot', 'contact', per_page => 10, after => :'before_c06') p;

-- Cursors mean the same row in any session: DateStyle and float precision do not matter.
SET datestyle = 'SQL, DMY';
SET extra_float_digits = -3;
SELECT crm_api.model_rows('hubspot', 'contact', per_page => 12, sort => 'createdate')->>'next' AS cur \gset
SET datestyle = 'SQL, MDY';
SELECT p->'rows'->0->>'id' AS first_id
  FROM crm_api.model_rows('hubspot', 'contact', after => :'cur', sort => 'createdate') p;
RESET datestyle;
RESET extra_float_digits;

-- Search: case-insensitive substring of any text column; %, _ and \ match literally.
SELECT s.search, w.keys, w.back_same
  FROM (VALUES ('BOSTON'), ('o''brien'), ('%_off\'), ('100%'), ('_'), ('ZOë 🚀'), ('nowhere')) s(search),
       pg_temp.walk('hubspot', 'contact', 4, 'city', false, s.search, '{id}') w
 ORDER BY s.search COLLATE "C";
SELECT w.keys = (SELECT array_agg(id ORDER BY id) FROM ingestion.hubspot_contact
                  WHERE email ILIKE '%EXAMPLE.COM%') AS all_match, w.pages
  FROM pg_temp.walk('hubspot', 'contact', 5, NULL, false, 'EXAMPLE.COM', '{id}') w;
-- An empty search is no search; a search of 200 characters is accepted.
SELECT json_array_length(crm_api.model_rows('hubspot', 'contact', search => '', per_page => 1000)->'rows');
SELECT json_array_length(crm_api.model_rows('hubspot', 'contact', search => repeat('é', 200))->'rows');
-- The estimate of a search comes from the planner, not from counting.
SELECT (p->>'estimated_total')::int BETWEEN 1 AND 30 AS estimated
  FROM crm_api.model_rows('hubspot', 'contact', search => 'boston') p;
-- A model without text columns matches no search.
SELECT p->'rows' AS rows, p->'note' AS note
  FROM crm_api.model_rows('arrivy', 'group', search => 'x') p;

-- Composite primary key: the default sort is its first column, ties broken by the rest.
SELECT p->'sort' AS sort, p->'columns'->0 AS pipeline, p->'columns'->1 AS deal_no
  FROM crm_api.model_rows('hubspot', 'deal', per_page => 2) p;
SELECT s.sort, s.descending, w.keys = s.expected AS same_as_order_by, w.back_same, w.pages
  FROM (VALUES
        (NULL, false, (SELECT array_agg(pipeline || ':' || deal_no ORDER BY pipeline, deal_no) FROM ingestion.hubspot_deal)),
        ('deal_no', true, (SELECT array_agg(pipeline || ':' || deal_no ORDER BY deal_no DESC, pipeline DESC) FROM ingestion.hubspot_deal)),
        ('amount', false, (SELECT array_agg(pipeline || ':' || deal_no ORDER BY amount IS NULL, amount, pipeline, deal_no) FROM ingestion.hubspot_deal)),
        ('amount', true, (SELECT array_agg(pipeline || ':' || deal_no ORDER BY amount IS NULL, amount DESC, pipeline DESC, deal_no DESC) FROM ingestion.hubspot_deal))
       ) s(sort, descending, expected),
       pg_temp.walk('hubspot', 'deal', 3, s.sort, s.descending, NULL, '{pipeline,deal_no}') w;

-- No primary key: physical order, with a note.
SELECT p->'sort' AS sort, p->'note' AS note FROM crm_api.model_rows('five9', 'contact', per_page => 2) p;
SELECT s.sort, w.keys = s.expected AS same_as_order_by, w.back_same, w.pages
  FROM (VALUES
        (NULL, (SELECT array_agg(number1 ORDER BY ctid) FROM ingestion.five9_contact)),
        ('List "Name"; x', (SELECT array_agg(number1 ORDER BY "List ""Name""; x" IS NULL, "List ""Name""; x", ctid) FROM ingestion.five9_contact))
       ) s(sort, expected),
       pg_temp.walk('five9', 'contact', 2, s.sort, false, NULL, '{number1}') w;
SELECT array_agg(r->>'number1') = (SELECT array_agg(number1 ORDER BY "List ""Name""; x" IS NULL, "List ""Name""; x" DESC, ctid DESC)
                                     FROM ingestion.five9_contact) AS export_order
  FROM crm_api.export_rows('five9', 'contact', sort => 'List "Name"; x', descending => true) r;
SELECT w.keys = (SELECT array_agg(id::text ORDER BY tableoid, ctid) FROM ingestion.hubspot_appointment) AS same_as_order_by,
       w.back_same, w.pages
  FROM pg_temp.walk('hubspot', 'appointment', 2, NULL, false, NULL, '{id}') w;

-- export_rows: every matching row in page order.
SELECT array_agg(r->>'id') = (SELECT array_agg(id ORDER BY score IS NULL, score DESC, id DESC)
                                FROM ingestion.hubspot_contact) AS export_order
  FROM crm_api.export_rows('hubspot', 'contact', sort => 'score', descending => true) r;
SELECT array_agg(r->>'id') AS boston
  FROM crm_api.export_rows('hubspot', 'contact', search => 'boston', sort => 'city') r;
SELECT count(*) FROM crm_api.export_rows('arrivy', 'group', search => 'x');

-- count_rows: exact.
SELECT crm_api.count_rows('hubspot', 'contact') AS contacts, crm_api.count_rows('five9', 'contact') AS five9;

-- Viewers read through the API only.
SET ROLE crm_dashboard_viewer;
SELECT json_array_length(crm_api.model_rows('hubspot', 'contact', per_page => 2)->'rows');
SELECT crm_api.count_rows('hubspot', 'deal');
SELECT count(*) FROM crm_api.export_rows('hubspot', 'contact', search => 'chicago');
SELECT count(*) FROM ingestion.hubspot_contact;
SELECT crm_dashboard.model_rows('hubspot', 'contact', NULL, 2, NULL, NULL, false, NULL);
RESET ROLE;

-- Bad input.
SELECT crm_api.model_rows('nocrm', 'contact');
SELECT crm_api.model_rows('hubspot', 'nomodel');
SELECT crm_api.model_rows('hubspot', 'migrations');
SELECT crm_api.model_rows(NULL, 'contact');
SELECT crm_api.model_rows('hubspot', '');
SELECT crm_api.count_rows('hubspot', 'contact; drop table x');
SELECT crm_api.export_rows('hubspot''; drop table x; --', 'contact');
SELECT crm_api.model_rows('hubspot', 'contact"; select 1; --');
SELECT crm_api.model_rows('hubspot', '%I');
SELECT crm_api.model_rows('hubspot', repeat('x', 100));
SELECT crm_api.model_rows('hubspot', 'contact', sort => 'nope');
SELECT crm_api.model_rows('hubspot', 'contact', sort => 'id; drop table x');
SELECT crm_api.model_rows('hubspot', 'contact', sort => '"id"');
SELECT crm_api.model_rows('hubspot', 'contact', sort => '%I');
SELECT crm_api.model_rows('hubspot', 'contact', sort => 'ctid');
SELECT crm_api.model_rows('hubspot', 'contact', sort => repeat('id', 1000));
SELECT crm_api.export_rows('hubspot', 'contact', sort => 'xmin');
SELECT crm_api.model_rows('arrivy', 'group', sort => 'doc');
SELECT crm_api.model_rows('arrivy', 'group', sort => 'spot');
SELECT crm_api.model_rows('hubspot', 'contact', per_page => 0);
SELECT crm_api.model_rows('hubspot', 'contact', per_page => -1);
SELECT crm_api.model_rows('hubspot', 'contact', per_page => 1001);
SELECT crm_api.model_rows('hubspot', 'contact', search => repeat('a', 201));
SELECT crm_api.export_rows('hubspot', 'contact', search => repeat('%', 201));
-- Malformed cursors.
SELECT crm_api.model_rows('hubspot', 'contact', after => 'garbage!!');
SELECT crm_api.model_rows('hubspot', 'contact', after => 'Zm9v');
SELECT crm_api.model_rows('hubspot', 'contact', after => pg_temp.b64url('[1, 2]'));
SELECT crm_api.model_rows('hubspot', 'contact', after => pg_temp.b64url('{"m":"ingestion.hubspot_contact",'));
SELECT crm_api.model_rows('hubspot', 'contact', after => pg_temp.b64url('{"m":"ingestion.hubspot_contact","d":"f"}'));
SELECT crm_api.model_rows('hubspot', 'contact', after => pg_temp.b64url('{"m":"ingestion.hubspot_contact","d":"x","s":"id","desc":false,"g":0,"k":["c01"]}'));
SELECT crm_api.model_rows('hubspot', 'contact', after => pg_temp.b64url('{"m":"ingestion.hubspot_contact","d":"f","s":"id","desc":false,"g":0,"k":["c01","c02"]}'));
SELECT crm_api.model_rows('hubspot', 'contact', after => pg_temp.b64url('{"m":"ingestion.hubspot_contact","d":"f","s":"id","desc":false,"g":0,"k":[1]}'));
SELECT crm_api.model_rows('hubspot', 'contact', after => pg_temp.b64url('{"m":"ingestion.hubspot_contact","d":"f","s":"id","desc":false,"g":1,"k":[]}'));
SELECT crm_api.model_rows('hubspot', 'contact', after => pg_temp.b64url('{"m":"ingestion.hubspot_contact","d":"f","s":"id","desc":false,"g":0,"k":["\udc00"]}'));
SELECT crm_api.model_rows('hubspot', 'contact', sort => 'score',
                          after => pg_temp.b64url('{"m":"ingestion.hubspot_contact","d":"f","s":"score","desc":false,"g":0,"k":["many","c01"]}'));
SELECT crm_api.model_rows('hubspot', 'contact', sort => 'createdate',
                          after => pg_temp.b64url('{"m":"ingestion.hubspot_contact","d":"f","s":"createdate","desc":false,"g":0,"k":["yesterday; drop table x","c01"]}'));
-- A forged but well-formed cursor is just a position: values are parameters, never SQL.
SELECT p->'rows'->0->>'id' AS first_id FROM crm_api.model_rows('hubspot', 'contact',
    after => pg_temp.b64url('{"m":"ingestion.hubspot_contact","d":"f","s":"id","desc":false,"g":0,"k":["c1''); drop table x; --"]}')) p;
-- A cursor of another sort or direction.
SELECT crm_api.model_rows('hubspot', 'contact', sort => 'score',
    after => (SELECT p->>'next' FROM crm_api.model_rows('hubspot', 'contact', sort => 'city') p));
SELECT crm_api.model_rows('hubspot', 'contact', sort => 'city',
    after => (SELECT p->>'next' FROM crm_api.model_rows('hubspot', 'contact', sort => 'city', descending => true) p));
SELECT crm_api.model_rows('hubspot', 'deal',
    after => (SELECT p->>'next' FROM crm_api.model_rows('hubspot', 'contact', per_page => 2) p));
SELECT count(*) AS contacts_intact FROM ingestion.hubspot_contact;

SET client_min_messages = warning;
DROP SCHEMA ingestion CASCADE;
RESET client_min_messages;
