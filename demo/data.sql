-- Demo warehouse data, generated inside PostgreSQL (run after schema.sql).
--
-- Sizes vary the way real warehouses do, from a dozen lookup rows to
-- 200,000+ contacts.  A few values carry the characters that break naive
-- code (quotes, markup, emoji, very long text, NULLs) so every page of the
-- dashboard is exercised by them.  setseed() makes every load identical.

SET search_path = ingestion;
SELECT setseed(0.4242);

-- ---------------------------------------------------------------- helpers
-- Session-local functions (pg_temp): they vanish with the loading session.

CREATE FUNCTION pg_temp.pick(text[]) RETURNS text LANGUAGE sql
AS $$ SELECT $1[1 + floor(random() * cardinality($1))::int] $$;

CREATE FUNCTION pg_temp.first_name() RETURNS text LANGUAGE sql
AS $$ SELECT pg_temp.pick('{James,Mary,Robert,Patricia,John,Jennifer,Michael,Linda,David,Elizabeth,William,Barbara,Richard,Susan,Joseph,Jessica,Thomas,Sarah,Carlos,Karen,Daniel,Lisa,Matthew,Nancy,Anthony,Betty,Mark,Sandra,Donald,Ashley,Steven,Kimberly,Andrew,Emily,Kenneth,Donna,Joshua,Michelle,Kevin,Carol,Brian,Amanda,Luis,Melissa,Jose,Deborah,Maria,Stephanie,Wei,Priya,Aaliyah,DeShawn,Nguyen,Fatima,Olga,Siobhan}'::text[]) $$;

CREATE FUNCTION pg_temp.last_name() RETURNS text LANGUAGE sql
AS $$ SELECT pg_temp.pick('{Smith,Johnson,Williams,Brown,Jones,Garcia,Miller,Davis,Rodriguez,Martinez,Hernandez,Lopez,Gonzalez,Wilson,Anderson,Thomas,Taylor,Moore,Jackson,Martin,Lee,Perez,Thompson,White,Harris,Sanchez,Clark,Ramirez,Lewis,Robinson,Walker,Young,Allen,King,Wright,Scott,Torres,Nguyen,Hill,Flores,Green,Adams,Nelson,Baker,Hall,Rivera,Campbell,Mitchell,Carter,Roberts,Kowalski,Patel,Okafor,Schmidt,Murphy,O''Brien,D''Angelo}'::text[]) $$;

-- Cities and their states, aligned by position.
CREATE FUNCTION pg_temp.city(i int) RETURNS text LANGUAGE sql IMMUTABLE
AS $$ SELECT ('{Columbus,Cleveland,Cincinnati,Dayton,Akron,Pittsburgh,Philadelphia,Harrisburg,Allentown,Indianapolis,Fort Wayne,Louisville,Lexington,Nashville,Knoxville,Charlotte,Raleigh,Richmond,Baltimore,Detroit,Grand Rapids,Ann Arbor,Chicago,Naperville,Milwaukee,Atlanta,Tampa,Orlando,Dallas,Austin}'::text[])[1 + i % 30] $$;
CREATE FUNCTION pg_temp.state(i int) RETURNS text LANGUAGE sql IMMUTABLE
AS $$ SELECT ('{OH,OH,OH,OH,OH,PA,PA,PA,PA,IN,IN,KY,KY,TN,TN,NC,NC,VA,MD,MI,MI,MI,IL,IL,WI,GA,FL,FL,TX,TX}'::text[])[1 + i % 30] $$;

CREATE FUNCTION pg_temp.phone() RETURNS text LANGUAGE sql
AS $$ SELECT format('(%s) %s-%s', 201 + floor(random() * 780)::int,
                    200 + floor(random() * 799)::int, lpad(floor(random() * 10000)::text, 4, '0')) $$;

CREATE FUNCTION pg_temp.email(f text, l text, n bigint) RETURNS text LANGUAGE sql
AS $$ SELECT lower(f) || CASE WHEN n % 3 = 0 THEN '.' ELSE '' END || lower(l)
            || CASE WHEN n % 4 = 0 THEN (n % 97)::text ELSE '' END || '@'
            || pg_temp.pick('{gmail.com,yahoo.com,outlook.com,hotmail.com,aol.com,icloud.com,comcast.net,att.net}'::text[]) $$;

-- A moment in the last `days` days.
CREATE FUNCTION pg_temp.ago(days int) RETURNS timestamptz LANGUAGE sql
AS $$ SELECT now() - random() * make_interval(days => days) $$;

CREATE FUNCTION pg_temp.hex(len int) RETURNS text LANGUAGE sql
AS $$ SELECT string_agg(substr('0123456789abcdef', 1 + floor(random() * 16)::int, 1), '')
      FROM generate_series(1, len) $$;

CREATE FUNCTION pg_temp.objid(n bigint) RETURNS text LANGUAGE sql IMMUTABLE
AS $$ SELECT substr(translate(encode(sha224(int8send(n)), 'base64'), '+/=', 'xYz'), 1, 10) $$;

-- ---------------------------------------------------------------- genius

INSERT INTO genius_division (id, label, region, is_active, updated_at)
SELECT i, d.label, d.region, i <> 11, pg_temp.ago(400)
FROM unnest('{Columbus,Cleveland,Cincinnati,Pittsburgh,Philadelphia,Indianapolis,Louisville,Nashville,Charlotte,Detroit,Chicago (closed),Atlanta}'::text[],
            '{Midwest,Midwest,Midwest,East,East,Midwest,South,South,South,Midwest,Midwest,South}'::text[])
     WITH ORDINALITY AS d(label, region, i);

INSERT INTO genius_appointment_type (id, label, default_duration, is_active)
SELECT i, t, (ARRAY[60, 90, 120, 30])[1 + i % 4], i <> 17
FROM unnest('{In-Home Consultation,Virtual Consultation,Measure,Re-Measure,Install,Service Call,Warranty Visit,Follow-Up,Design Center Visit,Financing Review,Roof Inspection,Window Estimate,Siding Estimate,Bath Estimate,Gutter Estimate,Door Estimate,Legacy Type (do not use),Reset}'::text[])
     WITH ORDINALITY AS t(t, i);

INSERT INTO genius_userdata (id, first_name, last_name, email, phone, division_id, title, is_active, hire_date, updated_at)
SELECT g, f, l, lower(f || '.' || l) || '@example-remodeling.com', pg_temp.phone(), 1 + g % 12,
       pg_temp.pick('{Sales Rep,Sales Rep,Sales Rep,Sales Manager,Project Manager,Installer,Call Center Agent,Office Admin}'::text[]),
       g % 9 <> 0, (now() - random() * interval '2500 days')::date, pg_temp.ago(200)
FROM (SELECT g, pg_temp.first_name() f, pg_temp.last_name() l FROM generate_series(1, 150) g) s;

INSERT INTO genius_prospect (id, first_name, last_name, address1, city, state, zip, phone1, email,
                             division_id, source, notes, add_date, updated_at)
SELECT 100000 + g, f, l,
       (100 + g % 9800)::text || ' ' || pg_temp.pick('{Oak,Maple,Main,Elm,High,Park,Lake,Hill,Cedar,Walnut,Washington,Church}'::text[])
           || ' ' || pg_temp.pick('{St,Ave,Rd,Dr,Ln,Ct,Blvd}'::text[]),
       pg_temp.city(g), pg_temp.state(g), lpad((43000 + g % 5000)::text, 5, '0'),
       CASE WHEN g % 23 = 0 THEN NULL ELSE pg_temp.phone() END,
       CASE WHEN g % 7 = 0 THEN NULL ELSE pg_temp.email(f, l, g) END,
       1 + g % 12, pg_temp.pick('{TV,Radio,Web,Google Ads,Facebook,Referral,Home Show,Door Knock,Mailer,Yelp}'::text[]),
       CASE WHEN g % 11 = 0 THEN 'Customer prefers evening calls.' END,
       a, a + random() * (now() - a)
FROM (SELECT g, pg_temp.first_name() f, pg_temp.last_name() l, pg_temp.ago(540) a
      FROM generate_series(1, 45000) g) s;

INSERT INTO genius_lead (lead_id, prospect_id, division_id, source, status, add_date, updated_at)
SELECT 500000 + g, 100001 + (g * 7) % 45000, 1 + g % 12,
       pg_temp.pick('{TV,Web,Google Ads,Facebook,Referral,Home Show,Door Knock,Mailer}'::text[]),
       pg_temp.pick('{new,new,contacted,set,set,issued,dead,duplicate}'::text[]), a, a + random() * (now() - a)
FROM (SELECT g, pg_temp.ago(540) a FROM generate_series(1, 50000) g) s;

INSERT INTO genius_appointment (id, prospect_id, user_id, type_id, date, time, duration, city, state, zip,
                                is_complete, complete_outcome_id, hubspot_appointment_id, updated_at)
SELECT 700000 + g, 100001 + (g * 13) % 45000, 1 + g % 150, 1 + g % 16, d::date,
       make_time(8 + g % 11, (g % 4) * 15, 0), (ARRAY[60, 90, 120])[1 + g % 3],
       pg_temp.city(g), pg_temp.state(g), lpad((43000 + g % 5000)::text, 5, '0'),
       d < now(), CASE WHEN d < now() THEN 1 + g % 9 END,
       CASE WHEN g % 3 = 0 THEN (9000000000 + g)::text END, least(d, now()) - random() * interval '3 days'
FROM (SELECT g, pg_temp.ago(500) + interval '30 days' d FROM generate_series(1, 40000) g) s;

INSERT INTO genius_quote (id, prospect_id, appointment_id, amount, status_id, expire_date, updated_at)
SELECT 800000 + g, 100001 + (g * 13) % 45000, 700000 + g, round((2500 + random() * 45000)::numeric, 2),
       1 + g % 5, (u + interval '30 days')::date, u
FROM (SELECT g, pg_temp.ago(500) u FROM generate_series(1, 25000) g) s;

INSERT INTO genius_job (id, prospect_id, quote_id, job_number, contract_amount, status, sold_date, install_date, updated_at)
SELECT 900000 + g, 100001 + (g * 13) % 45000, 800000 + g * 2, 'J-' || (24000 + g),
       round((4000 + random() * 60000)::numeric, 2),
       pg_temp.pick('{sold,sold,scheduled,in progress,complete,complete,complete,cancelled}'::text[]),
       s::date, (s + interval '21 days')::date, s + random() * interval '40 days'
FROM (SELECT g, pg_temp.ago(480) s FROM generate_series(1, 10000) g) x;

-- ---------------------------------------------------------------- hubspot

INSERT INTO hubspot_division (id, name, hs_lastmodifieddate)
SELECT (30100000 + i)::text, label, pg_temp.ago(300) FROM genius_division d(i, label);

INSERT INTO hubspot_contact (id, email, firstname, lastname, phone, city, state, zip, division,
                             hubspot_owner_id, lifecyclestage, createdate, lastmodifieddate, archived)
SELECT (51000000 + g * 3)::text,
       CASE WHEN g % 19 = 0 THEN NULL ELSE pg_temp.email(f, l, g) END, f, l,
       CASE WHEN g % 5 = 0 THEN '+1' || (2010000000 + floor(random() * 7899999999))::bigint::text ELSE pg_temp.phone() END,
       pg_temp.city(g), pg_temp.state(g), lpad((43000 + g % 5000)::text, 5, '0'),
       (SELECT label FROM genius_division WHERE id = 1 + g % 12),
       (80000 + g % 40)::text,
       pg_temp.pick('{subscriber,lead,lead,lead,marketingqualifiedlead,salesqualifiedlead,opportunity,customer}'::text[]),
       c, c + random() * (now() - c), g % 97 = 0
FROM (SELECT g, pg_temp.first_name() f, pg_temp.last_name() l, pg_temp.ago(720) c
      FROM generate_series(1, 210000) g) s;

INSERT INTO hubspot_deal (id, dealname, amount, dealstage, pipeline, closedate, hubspot_owner_id, createdate, hs_lastmodifieddate)
SELECT (71000000 + g * 7)::text,
       pg_temp.last_name() || ' - ' || pg_temp.pick('{Roof Replacement,Windows,Siding,Bath Remodel,Gutters,Entry Door,Kitchen}'::text[]),
       round((3000 + random() * 55000)::numeric, 2),
       pg_temp.pick('{appointmentscheduled,qualifiedtobuy,presentationscheduled,decisionmakerboughtin,contractsent,closedwon,closedlost}'::text[]),
       pg_temp.pick('{default,default,retail,commercial}'::text[]),
       CASE WHEN g % 3 = 0 THEN c + interval '20 days' END, (80000 + g % 40)::text, c, c + random() * (now() - c)
FROM (SELECT g, pg_temp.ago(600) c FROM generate_series(1, 25000) g) s;

INSERT INTO hubspot_appointment (id, hs_appointment_name, hs_appointment_start, hs_appointment_end,
                                 appointment_status, genius_appointment_id, hs_lastmodifieddate)
SELECT (91000000 + g * 5)::text, 'Consultation - ' || pg_temp.last_name(), st, st + interval '90 minutes',
       pg_temp.pick('{scheduled,scheduled,completed,completed,completed,no_show,cancelled,rescheduled}'::text[]),
       CASE WHEN g % 2 = 0 THEN 700000 + g END, least(st, now()) - random() * interval '5 days'
FROM (SELECT g, pg_temp.ago(500) + interval '30 days' st FROM generate_series(1, 30000) g) s;

-- ---------------------------------------------------------------- callrail

INSERT INTO callrail_account (id, name, outbound_recording_enabled, created_at) VALUES
    ('ACC8d1c0e5a2b7f4e91', 'Example Remodeling Group', true, now() - interval '1400 days'),
    ('ACCa03f6b2c91de4470', 'Example Roofing Co.', false, now() - interval '900 days'),
    ('ACC51e7d9a08c3b4f26', 'Example Bath & Kitchen', true, now() - interval '300 days');

INSERT INTO callrail_company (id, account_id, name, status, time_zone, created_at)
SELECT 'COM' || md5('company' || g)::text, (ARRAY['ACC8d1c0e5a2b7f4e91', 'ACCa03f6b2c91de4470', 'ACC51e7d9a08c3b4f26'])[1 + g % 3],
       pg_temp.city(g) || ' Office', CASE WHEN g = 13 THEN 'disabled' ELSE 'active' END,
       (ARRAY['America/New_York', 'America/Chicago'])[1 + g % 2], pg_temp.ago(1200)
FROM generate_series(1, 15) g;

INSERT INTO callrail_tracker (id, company_id, name, type, status, tracking_number, source, created_at)
SELECT 'TRK' || md5('tracker' || g)::text, 'COM' || md5('company' || (1 + g % 15))::text,
       s || ' - ' || pg_temp.city(g), CASE WHEN g % 4 = 0 THEN 'session' ELSE 'source' END,
       CASE WHEN g % 10 = 0 THEN 'disabled' ELSE 'active' END, pg_temp.phone(),
       jsonb_build_object('type', lower(replace(s, ' ', '_'))), pg_temp.ago(900)
FROM (SELECT g, pg_temp.pick('{Google Ads,Google Organic,Facebook,Bing,Yelp,TV,Radio,Direct Mail,Website}'::text[]) s
      FROM generate_series(1, 120) g) x;

INSERT INTO callrail_call (id, answered, direction, duration, start_time, customer_name, customer_phone_number,
                           customer_city, customer_state, tracking_phone_number, company_id, tracker_id,
                           lead_status, tags, value, source)
SELECT 'CAL' || md5('call' || g)::text, a, CASE WHEN g % 6 = 0 THEN 'outbound' ELSE 'inbound' END,
       CASE WHEN a THEN 20 + floor(random() * 1500)::int ELSE 0 END, st,
       CASE WHEN g % 9 = 0 THEN NULL ELSE upper(pg_temp.last_name()) || ' ' || upper(pg_temp.first_name()) END,
       '+1' || (2010000000 + g * 41 % 7899999999)::text, pg_temp.city(g), pg_temp.state(g),
       '+1' || (8005550000 + g % 120)::text,
       'COM' || md5('company' || (1 + g % 15))::text, 'TRK' || md5('tracker' || (1 + g % 120))::text,
       CASE WHEN g % 4 = 0 THEN 'good_lead' WHEN g % 7 = 0 THEN 'not_a_lead' END,
       CASE WHEN g % 5 = 0 THEN '["new-customer", "appointment-set"]'::jsonb WHEN g % 5 = 1 THEN '[]'::jsonb END,
       CASE WHEN g % 8 = 0 THEN round((random() * 500)::numeric, 2) END,
       pg_temp.pick('{Google Ads,Google Organic,Facebook,Bing,Yelp,TV,Radio,Direct Mail,Website}'::text[])
FROM (SELECT g, random() < 0.78 a, pg_temp.ago(500) st FROM generate_series(1, 150000) g) s;

-- ---------------------------------------------------------------- arrivy

INSERT INTO arrivy_group (id, name, description, created, updated)
SELECT 5630000000000 + g * 1013, pg_temp.city(g) || ' Crew', 'Install crews based in ' || pg_temp.city(g),
       now() - interval '700 days', pg_temp.ago(100)
FROM generate_series(1, 8) g;

INSERT INTO arrivy_entity (id, name, email, phone, type, group_id, is_active, created, updated)
SELECT 6100000000000 + g * 997, f || ' ' || l, lower(f) || '@crews.example.com', pg_temp.phone(),
       (ARRAY['installer', 'lead', 'helper'])[1 + g % 3], 5630000000000 + (1 + g % 8) * 1013, g % 13 <> 0,
       now() - interval '600 days', pg_temp.ago(200)
FROM (SELECT g, pg_temp.first_name() f, pg_temp.last_name() l FROM generate_series(1, 60) g) s;

INSERT INTO arrivy_task (id, title, start_datetime, end_datetime, status, entity_ids, customer_first_name,
                         customer_last_name, customer_email, customer_city, external_id, group_id, created, updated)
SELECT 4500000000000 + g * 31, pg_temp.pick('{Roof Install,Window Install,Siding Install,Bath Install,Service Call,Final Inspection}'::text[]),
       st, st + make_interval(hours => 2 + g % 6),
       CASE WHEN st > now() THEN 'NOTSTARTED'
            ELSE pg_temp.pick('{COMPLETE,COMPLETE,COMPLETE,COMPLETE,EXCEPTION,CANCELLED,STARTED,ENROUTE}'::text[]) END,
       jsonb_build_array(6100000000000 + (1 + g % 60) * 997, 6100000000000 + (1 + (g + 7) % 60) * 997),
       f, l, pg_temp.email(f, l, g), pg_temp.city(g), 'J-' || (24000 + g % 10000), 5630000000000 + (1 + g % 8) * 1013,
       st - interval '14 days', least(st, now()) - random() * interval '2 days'
FROM (SELECT g, pg_temp.first_name() f, pg_temp.last_name() l, pg_temp.ago(420) + interval '20 days' st
      FROM generate_series(1, 20000) g) s;

-- ---------------------------------------------------------------- leadconduit

INSERT INTO leadconduit_lead (id, outcome, reason, flow_name, source_name, first_name, last_name, email, phone_1,
                              city, state, postal_code, submitted_at, raw)
SELECT to_hex(1700000000 + g * 17) || substr(md5('lc' || g), 1, 16), o,
       CASE o WHEN 'failure' THEN pg_temp.pick('{duplicate lead,invalid phone,outside service area,missing email}'::text[])
              WHEN 'error' THEN 'recipient timeout' END,
       pg_temp.pick('{Web Leads,Affiliate Leads,Home Advisor,Angi}'::text[]),
       pg_temp.pick('{HomeAdvisor,Angi,Modernize,QuinStreet,Website Form}'::text[]),
       f, l, pg_temp.email(f, l, g), pg_temp.phone(), pg_temp.city(g), pg_temp.state(g),
       lpad((43000 + g % 5000)::text, 5, '0'), s,
       jsonb_build_object('flow', jsonb_build_object('name', 'Web Leads'), 'vars',
                          jsonb_build_object('first_name', f, 'last_name', l, 'trustedform_cert_url',
                                             'https://cert.trustedform.com/' || md5(g::text)))
FROM (SELECT g, pg_temp.first_name() f, pg_temp.last_name() l, pg_temp.ago(365) s,
             pg_temp.pick('{success,success,success,success,success,failure,failure,error}'::text[]) o
      FROM generate_series(1, 40000) g) x;

-- ---------------------------------------------------------------- marketsharp

INSERT INTO marketsharp_contact (id, first_name, last_name, email1, phone1, city, state, source, is_active,
                                 creation_date, last_update)
SELECT gen_random_uuid(), f, l, pg_temp.email(f, l, g), pg_temp.phone(), pg_temp.city(g), pg_temp.state(g),
       pg_temp.pick('{Internet,Referral,Canvass,Show,TV,Yard Sign}'::text[]), g % 17 <> 0, c, c + random() * (now() - c)
FROM (SELECT g, pg_temp.first_name() f, pg_temp.last_name() l, pg_temp.ago(900) c FROM generate_series(1, 15000) g) s;

CREATE TEMP TABLE ms_contacts AS
    SELECT row_number() OVER (ORDER BY creation_date) AS n, id FROM marketsharp_contact;

INSERT INTO marketsharp_appointment (id, contact_id, appointment_date, result, sales_rep, last_update)
SELECT gen_random_uuid(), c.id, d, pg_temp.pick('{Sold,Demo No Sale,No Demo,Reset,One Leg}'::text[]),
       pg_temp.first_name() || ' ' || pg_temp.last_name(), d - random() * interval '3 days'
FROM (SELECT g, pg_temp.ago(800) d FROM generate_series(1, 9000) g) x JOIN ms_contacts c ON c.n = 1 + (x.g * 7) % 15000;

INSERT INTO marketsharp_job (id, contact_id, number, name, type, status, sale_date, contract_amount, last_update)
SELECT gen_random_uuid(), c.id, 'MS-' || (10000 + g), 'Job ' || (10000 + g),
       pg_temp.pick('{Roofing,Windows,Siding,Bath,Gutters}'::text[]),
       pg_temp.pick('{Open,Open,Scheduled,Completed,Completed,Cancelled}'::text[]),
       d::date, round((5000 + random() * 40000)::numeric, 2), d + random() * interval '30 days'
FROM (SELECT g, pg_temp.ago(700) d FROM generate_series(1, 4000) g) x JOIN ms_contacts c ON c.n = 1 + (x.g * 11) % 15000;

INSERT INTO marketsharp_inquiry (id, contact_id, inquiry_date, source, product_interest, last_update)
SELECT gen_random_uuid(), c.id, d, pg_temp.pick('{Internet,Referral,Canvass,Show,TV}'::text[]),
       pg_temp.pick('{Roofing,Windows,Siding,Bath,Gutters,Doors}'::text[]), d + random() * interval '10 days'
FROM (SELECT g, pg_temp.ago(900) d FROM generate_series(1, 12000) g) x JOIN ms_contacts c ON c.n = 1 + (x.g * 3) % 15000;

-- ---------------------------------------------------------------- salespro

INSERT INTO salespro_customer (id, first_name, last_name, email, phone, address, city, state, zip, created_at, updated_at)
SELECT pg_temp.objid(g), f, l, pg_temp.email(f, l, g), pg_temp.phone(),
       (100 + g % 9800)::text || ' ' || pg_temp.pick('{Oak,Maple,Main,Elm,Cedar}'::text[]) || ' St',
       pg_temp.city(g), pg_temp.state(g), lpad((43000 + g % 5000)::text, 5, '0'), c, c + random() * (now() - c)
FROM (SELECT g, pg_temp.first_name() f, pg_temp.last_name() l, pg_temp.ago(600) c FROM generate_series(1, 8000) g) s;

INSERT INTO salespro_estimate (id, customer_id, office_name, sales_rep_first_name, sale_amount, is_sale, job_type,
                               finance_amount, created_at, updated_at)
SELECT pg_temp.objid(100000 + g), pg_temp.objid(1 + g % 8000), pg_temp.city(g) || ' Office', pg_temp.first_name(),
       amt, sold, pg_temp.pick('{Roofing,Windows,Siding,Bath,Gutters}'::text[]),
       CASE WHEN sold AND g % 3 = 0 THEN round(amt * 0.8, 2) END, c, c + random() * interval '20 days'
FROM (SELECT g, round((3000 + random() * 40000)::numeric, 2) amt, random() < 0.35 sold, pg_temp.ago(600) c
      FROM generate_series(1, 10000) g) s;

INSERT INTO salespro_payment (id, estimate_id, amount, method, paid_at, updated_at)
SELECT pg_temp.objid(200000 + g), pg_temp.objid(100000 + g * 2), round((500 + random() * 15000)::numeric, 2),
       pg_temp.pick('{check,card,ach,financing}'::text[]), p, p
FROM (SELECT g, pg_temp.ago(550) p FROM generate_series(1, 5000) g) s;

INSERT INTO salespro_leadresult (id, estimate_id, lead_results, updated_at)
SELECT pg_temp.objid(300000 + g), pg_temp.objid(100000 + g),
       jsonb_build_array(jsonb_build_object('title', 'Result', 'value', pg_temp.pick('{Sold,No Sale,Recall,Reset}'::text[])),
                         jsonb_build_object('title', 'Objection', 'value', pg_temp.pick('{Price,Timing,Spouse not present,None}'::text[]))),
       pg_temp.ago(500)
FROM generate_series(1, 7000) g;

-- ---------------------------------------------------------------- salesrabbit

INSERT INTO salesrabbit_user (id, first_name, last_name, email, phone, role, team, active, date_created, date_modified)
SELECT 20000 + g, f, l, lower(f || l) || '@knockers.example.com', pg_temp.phone(),
       (ARRAY['Rep', 'Rep', 'Rep', 'Team Lead', 'Manager'])[1 + g % 5], pg_temp.city(g % 6) || ' Team', g % 8 <> 0,
       now() - interval '800 days', pg_temp.ago(90)
FROM (SELECT g, pg_temp.first_name() f, pg_temp.last_name() l FROM generate_series(1, 45) g) s;

INSERT INTO salesrabbit_lead (id, first_name, last_name, email, phone_primary, street1, city, state, zip, latitude,
                              longitude, status, status_modified, user_id, campaign_id, date_created, date_modified,
                              deleted_at, custom_fields)
SELECT 3000000 + g, f, l, CASE WHEN g % 4 = 0 THEN pg_temp.email(f, l, g) END,
       CASE WHEN g % 3 <> 0 THEN pg_temp.phone() END,
       (100 + g % 9800)::text || ' ' || pg_temp.pick('{Oak,Maple,Main,Elm,Cedar,Birch}'::text[]) || ' St',
       pg_temp.city(g), pg_temp.state(g), lpad((43000 + g % 5000)::text, 5, '0'),
       39.9 + (random() - 0.5) * 4, -83.0 + (random() - 0.5) * 6,
       pg_temp.pick('{Not Home,Not Home,Not Interested,Come Back,Lead,Appointment Set,Sold}'::text[]),
       m, 20000 + 1 + g % 45, 100 + g % 6, c, m, CASE WHEN g % 150 = 0 THEN m END,
       jsonb_build_object('roof_age', 5 + g % 25, 'hoa', g % 5 = 0)
FROM (SELECT g, pg_temp.first_name() f, pg_temp.last_name() l, c, c + random() * (now() - c) m
      FROM (SELECT g, pg_temp.ago(400) c FROM generate_series(1, 30000) g) y) s;

-- ---------------------------------------------------------------- gsheet

INSERT INTO gsheet_marketing_lead (id, first_name, last_name, phone, email, utm_source, utm_campaign, division, created_at)
SELECT g, f, l, pg_temp.phone(), pg_temp.email(f, l, g),
       pg_temp.pick('{google,facebook,bing,nextdoor,email}'::text[]),
       pg_temp.pick('{spring_roof_promo,window_sale_q2,bath_remodel_fall,brand_awareness}'::text[]),
       (SELECT label FROM genius_division WHERE id = 1 + g % 12), pg_temp.ago(365)
FROM (SELECT g, pg_temp.first_name() f, pg_temp.last_name() l FROM generate_series(1, 2500) g) s;

INSERT INTO gsheet_marketing_spend (spend_date, cost, division, channel, campaign, campaign_type, sheet_row_number)
SELECT (current_date - (g / 4)), round((50 + random() * 1500)::numeric, 2),
       (SELECT label FROM genius_division WHERE id = 1 + g % 12),
       (ARRAY['Google Ads', 'Facebook', 'Bing', 'TV'])[1 + g % 4],
       pg_temp.pick('{spring_roof_promo,window_sale_q2,bath_remodel_fall,brand_awareness}'::text[]),
       (ARRAY['search', 'social', 'search', 'broadcast'])[1 + g % 4], g + 1
FROM generate_series(1, 1200) g;

-- ---------------------------------------------------------------- five9

INSERT INTO five9_contact (number1, first_name, last_name, list_name, last_disposition, last_disposition_time)
SELECT (2010000000 + g * 2131 % 7899999999)::text, pg_temp.first_name(), pg_temp.last_name(),
       pg_temp.pick('{Web Leads - Hot,Web Leads - Aged,Reset Campaign,Past Customers,Dead Lead Revival}'::text[]),
       CASE WHEN g % 10 = 0 THEN NULL
            ELSE pg_temp.pick('{No Answer,No Answer,Answering Machine,Busy,Appointment Set,Not Interested,Do Not Call,Wrong Number,Call Back}'::text[]) END,
       CASE WHEN g % 10 <> 0 THEN pg_temp.ago(200) END
FROM generate_series(1, 35000) g;

-- ---------------------------------------------------------------- hostile values
-- Values that break naive code: quotes, markup, emoji, very long text, NULLs.

UPDATE hubspot_contact SET firstname = 'Seán', lastname = 'O''Brien', city = 'Coeur d''Alene'
 WHERE id = '51000003';
UPDATE hubspot_contact SET firstname = '<script>alert(1)</script>', lastname = 'Tables"; DROP TABLE x; --'
 WHERE id = '51000006';
UPDATE hubspot_contact SET firstname = '<img src=x onerror=alert(1)>', email = 'img"onerror@example.com'
 WHERE id = '51000009';
UPDATE hubspot_contact SET firstname = 'Zoë 😀', lastname = '山田 🏠', city = 'São Paulo'
 WHERE id = '51000012';
UPDATE hubspot_contact SET firstname = NULL, lastname = NULL, email = NULL, phone = NULL, city = NULL, state = NULL
 WHERE id = '51000015';
UPDATE hubspot_contact SET lastname = repeat('Very long surname that keeps going ', 120) || 'end'
 WHERE id = '51000018';
UPDATE genius_prospect SET notes = repeat('Customer said: "call after 5pm" & wants <b>bold</b> quotes '' ; ', 200)
 WHERE id = 100007;
UPDATE genius_prospect SET first_name = '<script>alert(1)</script>', last_name = 'O''Neil', notes = 'Prefers 📞 over ✉️'
 WHERE id = 100014;
UPDATE callrail_call SET customer_name = '<img src=x onerror=alert(1)>', tags = '["<script>alert(1)</script>", "🔥 hot"]'
 WHERE id = 'CAL' || md5('call' || 5);
UPDATE leadconduit_lead SET reason = 'invalid phone: "(555) 000-0000" didn''t validate <script>alert(1)</script>'
 WHERE id = (SELECT min(id) FROM leadconduit_lead WHERE outcome = 'failure');
UPDATE five9_contact SET first_name = 'D''Angelo', last_name = '🙂 Smith' WHERE number1 = (SELECT min(number1) FROM five9_contact);
UPDATE gsheet_marketing_spend SET campaign = '=HYPERLINK("http://evil.example","click")' WHERE sheet_row_number = 2;

-- ---------------------------------------------------------------- not CRM models

INSERT INTO django_migrations (app, name, applied)
SELECT app, format('%s_%s', lpad(n::text, 4, '0'), (ARRAY['initial', 'add_fields', 'alter_options', 'add_index', 'auto'])[1 + n % 5]),
       now() - interval '800 days' + n * interval '3 days'
FROM unnest('{contenttypes,auth,admin,sessions,ingestion}'::text[]) app, generate_series(1, 12) n;

INSERT INTO auth_user (password, last_login, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
SELECT 'pbkdf2_sha256$600000$' || md5(u) || '$' || md5(u || 'x'), pg_temp.ago(30), u = 'admin', u,
       initcap(u), 'Example', u || '@example-remodeling.com', u IN ('admin', 'ops'), true, now() - interval '700 days'
FROM unnest('{admin,ops,analyst,marketing,sales.manager,readonly,etl,intern}'::text[]) u;

RESET search_path;

ANALYZE ingestion.genius_division, ingestion.genius_appointment_type, ingestion.genius_userdata,
        ingestion.genius_prospect, ingestion.genius_lead, ingestion.genius_appointment, ingestion.genius_quote,
        ingestion.genius_job, ingestion.hubspot_division, ingestion.hubspot_contact, ingestion.hubspot_deal,
        ingestion.hubspot_appointment, ingestion.callrail_account, ingestion.callrail_company,
        ingestion.callrail_tracker, ingestion.callrail_call, ingestion.arrivy_group, ingestion.arrivy_entity,
        ingestion.arrivy_task, ingestion.leadconduit_lead, ingestion.marketsharp_contact,
        ingestion.marketsharp_appointment, ingestion.marketsharp_job, ingestion.marketsharp_inquiry,
        ingestion.salespro_customer, ingestion.salespro_estimate, ingestion.salespro_payment,
        ingestion.salespro_leadresult, ingestion.salesrabbit_user, ingestion.salesrabbit_lead,
        ingestion.gsheet_marketing_lead, ingestion.gsheet_marketing_spend, ingestion.five9_contact,
        ingestion.django_migrations, ingestion.auth_user;
