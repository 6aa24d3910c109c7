-- Dashboard users, login tokens, role checks and the SQL-served UI.
\set VERBOSITY terse
LOAD 'crm_dashboard';

-- The secret must be long enough, and it is set server-wide (reload).
ALTER SYSTEM SET crm_dashboard.jwt_secret = 'too-short';
ALTER SYSTEM SET crm_dashboard.jwt_secret = 'regress-secret-0123456789abcdef-0123456789';
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);

-- Users of each role; bad input is refused with a reason.
SELECT crm_api.create_user('ada', 'ada-password', 'admin')->>'role' AS role;
SELECT crm_api.create_user('otto', 'otto-password', 'operator')->>'role' AS role;
SELECT crm_api.create_user('vera', 'vera-password', 'crm_dashboard_viewer')->>'role' AS role;
SELECT crm_api.create_user('bad name', 'long-enough', 'viewer');
SELECT crm_api.create_user('shorty', 'short', 'viewer');
SELECT crm_api.create_user('rolf', 'long-enough', 'superuser');
SELECT crm_api.create_user('vera', 'another-password', 'viewer');

-- Passwords are capped in length: each PBKDF2 round hashes the whole of it.
SELECT crm_api.create_user('longpw', repeat('x', 1025), 'viewer');
SELECT crm_api.login('otto', repeat('x', 1025));
SELECT crm_api.login('nobody', repeat('x', 100000));

-- Passwords are salted SCRAM secrets, never the password itself.
SELECT username, password_hash LIKE 'SCRAM-SHA-256$4096:%' AS scram,
       strpos(password_hash, username || '-password') = 0 AS no_plain
  FROM crm_dashboard.dashboard_user ORDER BY username;
SELECT count(DISTINCT split_part(password_hash, ':', 2)) AS distinct_salts
  FROM crm_dashboard.dashboard_user;

-- A JWT round trip: decode header and payload in SQL.
CREATE FUNCTION pg_temp.b64url(t text) RETURNS text LANGUAGE sql AS $$
    SELECT convert_from(decode(rpad(translate(t, '-_', '+/'), (length(t) + 3) / 4 * 4, '='), 'base64'), 'UTF8')
$$;
CREATE TEMP TABLE tok AS SELECT crm_api.login('otto', 'otto-password') AS reply;
SELECT reply->>'username' AS username, reply->>'role' AS role,
       (reply->>'expires_at')::timestamptz > now() + interval '7 hours' AS expires_later
  FROM tok;
SELECT pg_temp.b64url(split_part(reply->>'token', '.', 1)) AS header FROM tok;
SELECT p->>'role' AS role, p->>'username' AS username,
       (p->>'exp')::bigint - (p->>'iat')::bigint AS lifetime,
       abs((p->>'iat')::bigint - extract(epoch FROM now())::bigint) < 60 AS iat_now
  FROM (SELECT pg_temp.b64url(split_part(reply->>'token', '.', 2))::json AS p FROM tok) s;
SELECT length(split_part(reply->>'token', '.', 3)) AS signature_length FROM tok;
SELECT last_login_at IS NOT NULL AS logged_in FROM crm_dashboard.dashboard_user WHERE username = 'otto';

-- Wrong password and unknown user fail alike.
SELECT crm_api.login('otto', 'wrong-password');
SELECT crm_api.login('nobody', 'otto-password');

-- whoami outside HTTP: the session user and current role.
SET ROLE crm_dashboard_viewer;
SELECT crm_api.whoami()->>'role' AS role;

-- Role checks: only admins manage users; viewers cannot see the user list.
SELECT crm_api.create_user('mallory', 'mallory-password', 'admin')->>'role' AS role;
SELECT * FROM crm_api.users;
SELECT * FROM crm_dashboard.dashboard_user;
RESET ROLE;
SET ROLE crm_dashboard_operator;
SELECT crm_api.delete_user('ada');
RESET ROLE;
SET ROLE crm_dashboard_admin;
SELECT crm_api.create_user('walt', 'walt-password', 'viewer')->>'username' AS created;
SELECT crm_api.set_password('walt', 'walt-password-2');
SELECT crm_api.login('walt', 'walt-password-2')->>'role' AS role;
SELECT crm_api.set_password('ghost', 'ghost-password');
SELECT crm_api.delete_user('walt');
SELECT username, role FROM crm_api.users ORDER BY username;
-- the last admin cannot be removed
SELECT crm_api.delete_user('ada');

-- The secret is not readable by anyone but superusers.
SHOW crm_dashboard.jwt_secret;
SELECT current_setting('crm_dashboard.jwt_secret');
SELECT count(*) FROM pg_settings WHERE name = 'crm_dashboard.jwt_secret';
RESET ROLE;

-- The SQL-served UI: the same bytes as the file, a media type, an ETag.
SELECT media_type, etag ~ '^"[0-9a-f]+-[0-9a-f]+"$' AS etag_ok,
       body = pg_read_binary_file(current_setting('crm_dashboard.ui_directory') || '/index.html') AS same_bytes
  FROM crm_api.ui_file('index.html');
SELECT (crm_api.ui_file('')).media_type AS default_file;
SELECT * FROM crm_api.ui_file('../etc/passwd');
SELECT * FROM crm_api.ui_file('/../../etc/passwd');
SELECT * FROM crm_api.ui_file('%2e%2e/etc/passwd');
SELECT * FROM crm_api.ui_file('no-such-file.js');

-- Without a secret, login says what is missing.
ALTER SYSTEM RESET crm_dashboard.jwt_secret;
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);
SELECT crm_api.login('ada', 'ada-password');

DELETE FROM crm_dashboard.dashboard_user;
