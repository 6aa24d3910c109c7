-- Hostile arguments get clear errors, never a crash: NULLs, unsafe names in
-- argv, malformed cron expressions, forged identities.
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS ingestion;
RESET client_min_messages;
CREATE TABLE ingestion.callrail_contact (id integer PRIMARY KEY, email text);
CREATE TABLE ingestion.callrail_deal (id integer PRIMARY KEY);
CREATE TABLE ingestion."callrail_--settings=evil" (id integer PRIMARY KEY);
CREATE TABLE ingestion."callrail_Deal" (id integer PRIMARY KEY);
INSERT INTO crm_dashboard.sync_command (crm, argv) VALUES ('callrail', '{/bin/true,"{model}"}');
\set VERBOSITY default

-- NULL in any required argument is an error naming the argument.
SELECT crm_api.command_preview(NULL, NULL, NULL);
SELECT crm_api.command_preview('callrail', NULL);
SELECT crm_api.start_sync('callrail', NULL, '{}');
SELECT crm_api.start_sync(NULL, 'contact');
SELECT crm_api.schedule_sync(NULL, '', '', '{}');
SELECT crm_api.model_detail(NULL, 'contact');
SELECT crm_api.model_rows('callrail', NULL);
SELECT crm_api.count_rows(NULL, NULL);
SELECT crm_api.login(NULL, NULL);
SELECT crm_api.login('someone', NULL);
SELECT count(*) FROM crm_dashboard.model_columns(NULL, 'contact');
-- NULL where it means "none" or "all" is accepted
SELECT crm_api.command_preview('callrail', 'contact', NULL);
SELECT count(*) > 0 AS some FROM crm_dashboard.crm_models(NULL);

-- Names that would be unsafe in argv show in discovery, with the reason, and cannot be synced.
SELECT model, name_problem FROM crm_api.crm_models WHERE crm = 'callrail' ORDER BY model;
SELECT crm_api.model_detail('callrail', '--settings=evil') ->> 'name_problem' AS name_problem;
SELECT crm_api.command_preview('callrail', '--settings=evil');
SELECT crm_api.start_sync('callrail', '--settings=evil');
SELECT crm_api.start_sync('callrail', 'Deal');
SELECT crm_api.command_preview('callrail', 'contact');
SELECT crm_dashboard.name_problem(x) FROM (VALUES ('contact'), ('lead_2'), (''), ('-x'), ('a b'), ('a;b'), ('é')) v(x);

-- Cron expressions are checked as pg_cron reads them, before it sees them.
SELECT count(*) AS valid FROM (SELECT crm_dashboard.check_schedule(c)
  FROM (VALUES ('*/15 * * * *'), ('0 3 * * mon-fri'), ('@daily'), ('  5,10,20-30/5 0-23/2 1,15 JAN-jun 0,7 '),
               ('0 0 1 1 *'), ('59 23 31 12 7'), ('@reboot')) v(c)) s;
SELECT crm_dashboard.check_schedule('* * * * * * * *');
SELECT crm_dashboard.check_schedule('* * * *');
SELECT crm_dashboard.check_schedule('61 * * * *');
SELECT crm_dashboard.check_schedule('30-10 * * * *');
SELECT crm_dashboard.check_schedule('1/20 * * * *');
SELECT crm_dashboard.check_schedule('*/0 * * * *');
SELECT crm_dashboard.check_schedule('* * * foo *');
SELECT crm_dashboard.check_schedule('* * 0 * *');
SELECT crm_dashboard.check_schedule('1,,2 * * * *');
SELECT crm_dashboard.check_schedule('@sometimes');
SELECT crm_dashboard.check_schedule('@daily now');
SELECT crm_dashboard.check_schedule('');
SELECT crm_dashboard.check_schedule(E'* * * * *\n* * * * *');
SELECT crm_dashboard.check_schedule(NULL);

-- Who asked: an SQL caller is its session user, whatever request.jwt.claims says.
SET request.jwt.claims = '{"role": "crm_dashboard_admin", "username": "admin"}';
SELECT crm_api.start_sync('callrail', 'contact') IS NOT NULL AS queued;
SELECT requested_by = session_user AS is_session_user, requested_via,
       configuration -> 'requested_by' ->> 'username' AS username
  FROM crm_dashboard.sync_history WHERE crm_source = 'callrail' ORDER BY id DESC LIMIT 1;
SELECT crm_api.whoami() ->> 'username' = session_user AS whoami_is_session_user;
RESET request.jwt.claims;
-- only a superuser (the bundled HTTP server) may say which dashboard user acts
CREATE ROLE hardening_operator IN ROLE crm_dashboard_operator;
SET ROLE hardening_operator;
SET crm_dashboard.request_user = 'admin';
RESET ROLE;
DROP ROLE hardening_operator;
-- the allowed "via" values
SELECT crm_dashboard.valid_via(v) FROM (VALUES ('sql'), ('ui'), ('api'), ('schedule'), ('external'), ('forged')) x(v);
SELECT crm_dashboard.start_sync('callrail', 'contact', '{}', via => 'forged');
\set VERBOSITY terse

SELECT count(crm_api.stop_sync(id)) FROM crm_dashboard.sync_history WHERE crm_source = 'callrail';
DELETE FROM crm_dashboard.sync_history WHERE crm_source = 'callrail';
DELETE FROM crm_dashboard.sync_command;
DROP TABLE ingestion.callrail_contact, ingestion.callrail_deal, ingestion."callrail_--settings=evil", ingestion."callrail_Deal";
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = 'ingestion'::regnamespace) THEN
        DROP SCHEMA ingestion;
    END IF;
END
$$;
