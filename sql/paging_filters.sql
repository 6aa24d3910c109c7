-- The JSON filter of model_rows, count_rows, export_rows and export_cursor:
-- the grammar, keyset paging under a filter, index awareness, and every
-- mistake a filter can hold.  Fixtures live in schema ingestion and are
-- dropped at the end.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS ingestion CASCADE;
RESET client_min_messages;
CREATE SCHEMA ingestion;

CREATE TABLE ingestion.hubspot_contact (
    id text PRIMARY KEY,
    email text,
    firstname varchar(50),
    city text,
    score integer,
    amount numeric(10, 2),
    createdate timestamptz,
    birthday date,
    seen timestamptz,
    archived boolean NOT NULL DEFAULT false,
    doc json,
    "List ""Name""; x" text
);
INSERT INTO ingestion.hubspot_contact
SELECT 'c' || lpad(i::text, 2, '0'),
       CASE WHEN i % 6 = 0 THEN '' ELSE 'user' || i || '@example.com' END,
       (ARRAY['Ann', 'Bob', 'O''Brien', 'Zoë', '100%_off'])[i % 5 + 1],
       CASE WHEN i % 4 = 0 THEN NULL ELSE (ARRAY['Austin', 'Boston', 'Chicago'])[i % 3 + 1] END,
       CASE WHEN i % 7 = 0 THEN NULL ELSE i % 5 END,
       i * 10.25,
       timestamptz '2024-01-01 00:00+00' + i * interval '1 day',
       date '1990-01-01' + i * 30,
       now() - i * interval '1 day' + interval '1 hour',
       i % 2 = 0,
       json_build_object('n', i),
       'L' || i % 3
  FROM generate_series(1, 30) i;

-- A large model: an index on score serves filters on it; city has none.
CREATE TABLE ingestion.hubspot_event (id bigint PRIMARY KEY, score integer, city text);
INSERT INTO ingestion.hubspot_event SELECT i, i % 1000, 'city' || i % 50 FROM generate_series(1, 20000) i;
CREATE INDEX ON ingestion.hubspot_event (score);
ANALYZE ingestion.hubspot_contact, ingestion.hubspot_event;

-- The ids of every row a filter selects, walking all pages forward; and
-- whether walking back from the last page gives the same pages.
CREATE FUNCTION pg_temp.walk(p_model text, p_filter jsonb, p_sort text DEFAULT NULL,
                             p_desc boolean DEFAULT false, p_search text DEFAULT NULL,
                             p_per_page integer DEFAULT 4,
                             OUT ids text[], OUT back_same boolean)
LANGUAGE plpgsql AS $$
DECLARE
    page json;
    cur text;
    texts text[] := '{}';
    t text;
BEGIN
    ids := '{}';
    LOOP
        page := crm_api.model_rows('hubspot', p_model, cur, p_per_page, p_search, p_sort, p_desc, p_filter);
        SELECT string_agg(r->>'id', ',') INTO t FROM json_array_elements(page->'rows') r;
        IF t IS NOT NULL THEN
            ids := ids || string_to_array(t, ',');
            texts := texts || t;
        END IF;
        cur := page->>'next';
        EXIT WHEN cur IS NULL;
    END LOOP;
    back_same := true;
    cur := page->>'previous';
    FOR i IN REVERSE cardinality(texts) - 1 .. 1 LOOP
        page := crm_api.model_rows('hubspot', p_model, cur, p_per_page, p_search, p_sort, p_desc, p_filter);
        SELECT string_agg(r->>'id', ',') INTO t FROM json_array_elements(page->'rows') r;
        back_same := back_same AND t = texts[i];
        cur := page->>'previous';
    END LOOP;
END
$$;

-- The ids matching a filter, one page of up to 1000 rows.
CREATE FUNCTION pg_temp.ids(p_filter jsonb, p_model text DEFAULT 'contact') RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(r->>'id', ','), '(none)')
      FROM json_array_elements(crm_api.model_rows('hubspot', p_model, per_page => 1000, filter => p_filter)->'rows') r
$$;

-- The ids of what an export cursor returns.
CREATE FUNCTION pg_temp.cursor_ids(c refcursor) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r record;
    ids text[] := '{}';
BEGIN
    LOOP
        FETCH c INTO r;
        EXIT WHEN NOT FOUND;
        ids := ids || r.id;
    END LOOP;
    CLOSE c;
    RETURN array_to_string(ids, ',');
END
$$;

-- Each column says what a filter may ask of it.
SELECT c->>'name' AS name, c->>'class' AS class, c->'operators' AS operators
  FROM json_array_elements(crm_api.model_rows('hubspot', 'contact', per_page => 1)->'columns') c;
-- The form for clients, in capabilities().
SELECT f->>'name' AS op, f->>'label' AS label, f->>'value' AS value, f->'classes' AS classes
  FROM json_array_elements(crm_api.capabilities()->'filters'->'operators') f;
SELECT crm_api.capabilities()->'filters'->'max_depth' AS max_depth,
       crm_api.capabilities()->'filters'->'max_conditions' AS max_conditions;

-- Text operators.
SELECT f AS filter, pg_temp.ids(f::jsonb) AS ids FROM (VALUES
    ('{"column": "city", "op": "eq", "value": "Boston"}'),
    ('{"column": "city", "op": "neq", "value": "Boston"}'),
    ('{"column": "city", "op": "contains", "value": "OST"}'),
    ('{"column": "firstname", "op": "contains", "value": "%_"}'),
    ('{"column": "firstname", "op": "starts_with", "value": "o''b"}'),
    ('{"column": "email", "op": "is_empty"}'),
    ('{"column": "email", "op": "not_empty", "value": null}'),
    ('{"column": "city", "op": "in", "value": ["Austin", "Chicago", "Nowhere"]}'),
    ('{"column": "city", "op": "is_null"}'),
    ('{"column": "List \"Name\"; x", "op": "eq", "value": "L0"}'),
    ('{"column": "id", "op": "eq", "value": "c01''); drop table ingestion.hubspot_contact; --"}')
  ) v(f);
-- Numbers, dates, timestamps, booleans.
SELECT f AS filter, pg_temp.ids(f::jsonb) AS ids FROM (VALUES
    ('{"column": "score", "op": "eq", "value": 3}'),
    ('{"column": "score", "op": "eq", "value": "3"}'),
    ('{"column": "score", "op": "neq", "value": 3}'),
    ('{"column": "score", "op": "lt", "value": 1}'),
    ('{"column": "score", "op": "gte", "value": 4}'),
    ('{"column": "score", "op": "in", "value": [0, 4]}'),
    ('{"column": "amount", "op": "between", "value": [100, 150.5]}'),
    ('{"column": "amount", "op": "gt", "value": 297.5}'),
    ('{"column": "createdate", "op": "lte", "value": "2024-01-03 00:00+00"}'),
    ('{"column": "createdate", "op": "between", "value": ["2024-01-29", "2024-02-10"]}'),
    ('{"column": "birthday", "op": "lt", "value": "1990-03-15"}'),
    ('{"column": "seen", "op": "within_last", "value": "3 days"}'),
    ('{"column": "seen", "op": "within_last", "value": "1 week"}'),
    ('{"column": "archived", "op": "is_true"}'),
    ('{"column": "archived", "op": "is_false"}'),
    ('{"column": "doc", "op": "not_null"}')
  ) v(f);
-- Dates relative to today.
BEGIN;
UPDATE ingestion.hubspot_contact SET birthday = CURRENT_DATE - (substr(id, 2)::int - 1) WHERE id <= 'c05';
SELECT pg_temp.ids('{"column": "birthday", "op": "within_last", "value": "2 days"}') AS ids;
ROLLBACK;

-- Groups: AND, OR, nested two levels.
SELECT f AS filter, pg_temp.ids(f::jsonb) AS ids FROM (VALUES
    ('{"and": [{"column": "city", "op": "eq", "value": "Boston"}, {"column": "archived", "op": "is_true"}]}'),
    ('{"or": [{"column": "score", "op": "eq", "value": 0}, {"column": "city", "op": "is_null"}]}'),
    ('{"and": [{"or": [{"column": "city", "op": "eq", "value": "Austin"}, {"column": "city", "op": "eq", "value": "Chicago"}]},
               {"or": [{"column": "score", "op": "gt", "value": 3}, {"column": "score", "op": "is_null"}]}]}'),
    ('{"or": [{"and": [{"column": "amount", "op": "lt", "value": 30}]}, {"column": "amount", "op": "gt", "value": 290}]}')
  ) v(f);

-- Paging under a filter: every page, forward and back, is the filtered ORDER BY.
SELECT s.sort, s.descending, s.search, w.ids = s.expected AS same_as_order_by, w.back_same,
       cardinality(w.ids) AS n
  FROM (VALUES
        (NULL, false, NULL, (SELECT array_agg(id ORDER BY id) FROM ingestion.hubspot_contact WHERE score >= 2 OR city IS NULL)),
        ('city', false, NULL, (SELECT array_agg(id ORDER BY city IS NULL, city, id) FROM ingestion.hubspot_contact WHERE score >= 2 OR city IS NULL)),
        ('city', true, NULL, (SELECT array_agg(id ORDER BY city IS NULL, city DESC, id DESC) FROM ingestion.hubspot_contact WHERE score >= 2 OR city IS NULL)),
        ('score', false, NULL, (SELECT array_agg(id ORDER BY score IS NULL, score, id) FROM ingestion.hubspot_contact WHERE score >= 2 OR city IS NULL)),
        ('score', true, 'example', (SELECT array_agg(id ORDER BY score IS NULL, score DESC, id DESC) FROM ingestion.hubspot_contact
                                     WHERE (score >= 2 OR city IS NULL) AND email ILIKE '%example%'))
       ) s(sort, descending, search, expected),
       pg_temp.walk('contact', '{"or": [{"column": "score", "op": "gte", "value": 2}, {"column": "city", "op": "is_null"}]}',
                    s.sort, s.descending, s.search) w;
-- A filter that matches nothing: one empty page.
SELECT p->'rows' AS rows, p->'next' AS next, p->'previous' AS previous
  FROM crm_api.model_rows('hubspot', 'contact', filter => '{"column": "score", "op": "gt", "value": 100}') p;
-- NULL is no filter.
SELECT json_array_length(crm_api.model_rows('hubspot', 'contact', per_page => 100, filter => NULL)->'rows') AS n;

-- count_rows, export_rows and export_cursor take the same filter (and search).
SELECT crm_api.count_rows('hubspot', 'contact', filter => '{"column": "city", "op": "eq", "value": "Boston"}') AS boston,
       crm_api.count_rows('hubspot', 'contact', search => 'boston') AS search_boston,
       crm_api.count_rows('hubspot', 'contact', 'boston', '{"column": "archived", "op": "is_true"}') AS boston_archived,
       crm_api.count_rows('hubspot', 'contact') AS every_row;
SELECT array_agg(r->>'id') AS boston_by_score
  FROM crm_api.export_rows('hubspot', 'contact', sort => 'score', descending => true,
                           filter => '{"column": "city", "op": "eq", "value": "Boston"}') r;
SELECT pg_temp.cursor_ids(crm_api.export_cursor('hubspot', 'contact', sort => 'amount', descending => true,
                          filter => '{"column": "score", "op": "in", "value": [1]}')) AS ids;

-- Index awareness: a filter an index serves keeps the page cheap; one that
-- reads a large model whole says so ("scan").
SET crm_dashboard.scan_warning_rows = 10000;
SELECT p->'scan' IS NOT NULL AND p->>'scan' <> 'null' AS warned, p->'scan'->>'table_rows' AS table_rows
  FROM crm_api.model_rows('hubspot', 'event', filter => '{"column": "city", "op": "eq", "value": "city7"}') p;
SELECT p->>'scan' AS scan, json_array_length(p->'rows') AS n
  FROM crm_api.model_rows('hubspot', 'event', filter => '{"column": "score", "op": "eq", "value": 7}', sort => 'score') p;
SELECT p->>'scan' AS scan FROM crm_api.model_rows('hubspot', 'event') p;
SELECT p->>'scan' AS scan FROM crm_api.model_rows('hubspot', 'contact', filter => '{"column": "city", "op": "eq", "value": "x"}') p;
RESET crm_dashboard.scan_warning_rows;
SELECT p->>'scan' AS scan
  FROM crm_api.model_rows('hubspot', 'event', filter => '{"column": "city", "op": "eq", "value": "city7"}') p;
-- The next page of a filtered page continues after it, in the sort order.
SELECT crm_api.model_rows('hubspot', 'event', per_page => 3, sort => 'score',
                          filter => '{"column": "score", "op": "between", "value": [10, 11]}')->>'next' AS cur \gset
SELECT array_agg(r->>'id') AS second_page
  FROM json_array_elements(crm_api.model_rows('hubspot', 'event', per_page => 3, sort => 'score', after => :'cur',
                           filter => '{"column": "score", "op": "between", "value": [10, 11]}')->'rows') r;

-- Viewers filter through the API.
SET ROLE crm_dashboard_viewer;
SELECT pg_temp.ids('{"column": "score", "op": "eq", "value": 4}') AS ids;
SELECT crm_api.count_rows('hubspot', 'contact', filter => '{"column": "score", "op": "eq", "value": 4}');
RESET ROLE;

-- Every mistake is an error naming the column or operator, and where it is.
\set VERBOSITY default
-- not a filter object
SELECT pg_temp.ids('[]');
SELECT pg_temp.ids('"city"');
SELECT pg_temp.ids('{}');
SELECT pg_temp.ids('{"and": [1]}');
SELECT pg_temp.ids('{"column": "city", "op": "eq", "value": "x", "limit": 1}');
SELECT pg_temp.ids('{"and": [], "column": "city"}');
SELECT pg_temp.ids('{"and": {"column": "city", "op": "is_null"}}');
SELECT pg_temp.ids('{"or": []}');
-- column
SELECT pg_temp.ids('{"op": "is_null"}');
SELECT pg_temp.ids('{"column": "city"}');
SELECT pg_temp.ids('{"value": 1}');
SELECT pg_temp.ids('{"column": 7, "op": "is_null"}');
SELECT pg_temp.ids('{"and": [{"column": "city", "op": "is_null"}, {"column": "town", "op": "eq", "value": "x"}]}');
SELECT pg_temp.ids('{"column": "id; drop table x", "op": "is_null"}');
SELECT pg_temp.ids('{"column": "ctid", "op": "is_null"}');
-- operator
SELECT pg_temp.ids('{"column": "city", "op": 1}');
SELECT pg_temp.ids('{"column": "city", "op": "like", "value": "x%"}');
SELECT pg_temp.ids('{"column": "score", "op": "contains", "value": "1"}');
SELECT pg_temp.ids('{"column": "id", "op": "lt", "value": "c03"}');
SELECT pg_temp.ids('{"column": "archived", "op": "lt", "value": true}');
SELECT pg_temp.ids('{"column": "city", "op": "is_true"}');
SELECT pg_temp.ids('{"column": "score", "op": "within_last", "value": "7 days"}');
SELECT pg_temp.ids('{"column": "doc", "op": "eq", "value": "{}"}');
-- value
SELECT pg_temp.ids('{"column": "city", "op": "eq"}');
SELECT pg_temp.ids('{"column": "city", "op": "is_null", "value": "x"}');
SELECT pg_temp.ids('{"column": "city", "op": "eq", "value": null}');
SELECT pg_temp.ids('{"column": "city", "op": "eq", "value": {"a": 1}}');
SELECT pg_temp.ids('{"column": "city", "op": "eq", "value": ["Boston"]}');
SELECT pg_temp.ids('{"column": "score", "op": "eq", "value": "many"}');
SELECT pg_temp.ids('{"column": "score", "op": "gt", "value": 1.5}');
SELECT pg_temp.ids('{"column": "score", "op": "lt", "value": 99999999999}');
SELECT pg_temp.ids('{"column": "createdate", "op": "gt", "value": "yesterday-ish"}');
SELECT pg_temp.ids('{"column": "birthday", "op": "eq", "value": "2024-02-30"}');
SELECT pg_temp.ids('{"column": "amount", "op": "between", "value": [1]}');
SELECT pg_temp.ids('{"column": "amount", "op": "between", "value": 1}');
SELECT pg_temp.ids('{"column": "amount", "op": "between", "value": [1, "lots"]}');
SELECT pg_temp.ids('{"column": "score", "op": "in", "value": []}');
SELECT pg_temp.ids('{"column": "score", "op": "in", "value": [1, "two"]}');
SELECT pg_temp.ids(json_build_object('column', 'score', 'op', 'in', 'value', (SELECT json_agg(i) FROM generate_series(1, 1001) i))::jsonb);
SELECT pg_temp.ids(json_build_object('column', 'city', 'op', 'eq', 'value', repeat('x', 1001))::jsonb);
SELECT pg_temp.ids('{"column": "seen", "op": "within_last", "value": "7"}');
SELECT pg_temp.ids('{"column": "seen", "op": "within_last", "value": "-7 days"}');
SELECT pg_temp.ids('{"column": "seen", "op": "within_last", "value": "200 years"}');
SELECT pg_temp.ids('{"column": "seen", "op": "within_last", "value": "soon"}');
-- limits
SELECT pg_temp.ids('{"and": [{"or": [{"and": [{"or": [{"and": [{"column": "city", "op": "is_null"}]}]}]}]}]}');
SELECT pg_temp.ids(json_build_object('or', (SELECT json_agg(json_build_object('column', 'score', 'op', 'eq', 'value', i))
                                              FROM generate_series(1, 51) i))::jsonb);
-- the same checks in count_rows and the exports
SELECT crm_api.count_rows('hubspot', 'contact', filter => '{"column": "town", "op": "is_null"}');
SELECT count(*) FROM crm_api.export_rows('hubspot', 'contact', filter => '{"column": "score", "op": "eq", "value": "x"}');
SELECT crm_api.export_cursor('hubspot', 'contact', filter => '{"column": "city", "op": "gt2", "value": "x"}');
SELECT count(*) AS contacts_intact FROM ingestion.hubspot_contact;

SET client_min_messages = warning;
DROP SCHEMA ingestion CASCADE;
RESET client_min_messages;
