-- Dashboard users and tokens for the HTTP API (PostgREST-style JWT auth).
--
-- A dashboard user is a row here, not a database role: the token's role claim
-- is one of the three dashboard roles, which the HTTP server (or a real
-- PostgREST) switches to with SET LOCAL ROLE.  Passwords are SCRAM-SHA-256
-- secrets (salted, iterated), never plain text.

-- The role that anonymous requests use to reach login when no
-- crm_dashboard.anon_role is configured (for a real PostgREST: db-anon-role).
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'crm_dashboard_anon') THEN
        CREATE ROLE crm_dashboard_anon NOLOGIN;
    END IF;
END
$roles$;
GRANT USAGE ON SCHEMA crm_api TO crm_dashboard_anon;

CREATE TABLE crm_dashboard.dashboard_user (
    username      text PRIMARY KEY CHECK (username ~ '^[A-Za-z0-9_.@-]{1,63}$'),
    password_hash text NOT NULL CHECK (password_hash LIKE 'SCRAM-SHA-256$%'),
    role          text NOT NULL CHECK (role IN ('crm_dashboard_viewer', 'crm_dashboard_operator',
                                                'crm_dashboard_admin')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz,
    token_generation bigint NOT NULL DEFAULT 1
);
COMMENT ON TABLE crm_dashboard.dashboard_user IS
    'Private: users of the web dashboard, with SCRAM-SHA-256 password secrets.';
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.dashboard_user', '');
COMMENT ON COLUMN crm_dashboard.dashboard_user.token_generation IS
    'Every token carries the generation it was issued in; a logout, a password or role change bumps it, revoking the user''s tokens.';

-- A password or role change revokes every token of the user at once.
CREATE FUNCTION crm_dashboard.revoke_tokens_on_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.password_hash IS DISTINCT FROM OLD.password_hash OR NEW.role IS DISTINCT FROM OLD.role THEN
        NEW.token_generation := OLD.token_generation + 1;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION crm_dashboard.revoke_tokens_on_change() IS
    'Private: bump a dashboard user''s token generation when the password or role changes.';
CREATE TRIGGER dashboard_user_revoke_tokens
    BEFORE UPDATE ON crm_dashboard.dashboard_user
    FOR EACH ROW EXECUTE FUNCTION crm_dashboard.revoke_tokens_on_change();

-- Whether a token issued to username with role, in generation, is still valid.
CREATE FUNCTION crm_dashboard.token_is_current(username text, role text, generation bigint)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN EXISTS (SELECT 1 FROM crm_dashboard.dashboard_user u
                WHERE u.username = token_is_current.username AND u.role = token_is_current.role
                  AND u.token_generation = token_is_current.generation);
COMMENT ON FUNCTION crm_dashboard.token_is_current(text, text, bigint) IS
    'Private: whether a dashboard user''s token is still valid (the user exists, with that role and token generation).';

CREATE FUNCTION crm_dashboard.hash_password(password text) RETURNS text
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'crm_dashboard_hash_password';
COMMENT ON FUNCTION crm_dashboard.hash_password(text) IS
    'Private: a salted SCRAM-SHA-256 secret of a password.';

CREATE FUNCTION crm_dashboard.login(username text, password text) RETURNS json
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'crm_dashboard_login';
COMMENT ON FUNCTION crm_dashboard.login(text, text) IS
    'Private: check a dashboard user''s password and sign a token.';

REVOKE ALL ON FUNCTION crm_dashboard.hash_password(text), crm_dashboard.login(text, text),
    crm_dashboard.revoke_tokens_on_change(), crm_dashboard.token_is_current(text, text, bigint) FROM PUBLIC;

-- The role name of a dashboard role given in full or short ('viewer').
CREATE FUNCTION crm_dashboard.dashboard_role(role text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    full_name text := CASE WHEN role LIKE 'crm\_dashboard\_%' THEN role ELSE 'crm_dashboard_' || role END;
BEGIN
    IF full_name IS NULL OR full_name NOT IN ('crm_dashboard_viewer', 'crm_dashboard_operator',
                                             'crm_dashboard_admin') THEN
        RAISE EXCEPTION 'invalid dashboard role "%"', role
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use viewer, operator or admin.';
    END IF;
    RETURN full_name;
END;
$$;

-- Reject a password too short to be worth hashing.
CREATE FUNCTION crm_dashboard.check_password(password text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF password IS NULL OR length(password) < 8 THEN
        RAISE EXCEPTION 'password is too short'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use at least 8 characters.';
    END IF;
END;
$$;

-- Public API.
CREATE FUNCTION crm_api.login(username text, password text) RETURNS json
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN crm_dashboard.login(username, password);
COMMENT ON FUNCTION crm_api.login(text, text) IS
    'Log in a dashboard user: {token, username, role, expires_at}; 28P01 on a bad username or password.';

CREATE FUNCTION crm_api.whoami() RETURNS json
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT json_build_object(
        'username', coalesce(nullif(current_setting('crm_dashboard.request_user', true), ''),
                             session_user::text),
        'role', current_user::text)
$$;
COMMENT ON FUNCTION crm_api.whoami() IS
    'The signed-in dashboard user and role (over the bundled HTTP server), or the session user and current role (SQL).';

-- Logging out revokes every token of the user (all of their sessions).
CREATE FUNCTION crm_api.logout() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    who text := nullif(current_setting('crm_dashboard.request_user', true), '');
BEGIN
    IF who IS NULL THEN
        RAISE EXCEPTION 'no dashboard user is signed in here'
            USING ERRCODE = 'invalid_authorization_specification',
                  HINT = 'Log out through the HTTP server (POST /api/rpc/logout) with the session''s token.';
    END IF;
    UPDATE crm_dashboard.dashboard_user u SET token_generation = u.token_generation + 1
     WHERE u.username = who;
END
$$;
COMMENT ON FUNCTION crm_api.logout() IS
    'End the signed-in dashboard user''s sessions: every token issued to them stops working at once.';

-- For a real PostgREST (db-pre-request): refuse revoked tokens as the bundled server does.
CREATE FUNCTION crm_api.check_token() RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    claims json := nullif(current_setting('request.jwt.claims', true), '')::json;
BEGIN
    IF claims ->> 'username' IS NOT NULL
       AND NOT crm_dashboard.token_is_current(claims ->> 'username', claims ->> 'role',
                                              (claims ->> 'gen')::bigint) THEN
        RAISE EXCEPTION 'JWT has been revoked'
            USING ERRCODE = 'invalid_authorization_specification',
                  HINT = 'Log in again.';
    END IF;
END
$$;
COMMENT ON FUNCTION crm_api.check_token() IS
    'For PostgREST''s db-pre-request: refuse a dashboard user''s token revoked by logout, a password or role change, or deletion.';

CREATE FUNCTION crm_api.create_user(username text, password text, role text DEFAULT 'viewer')
RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result json;
BEGIN
    IF username IS NULL OR username !~ '^[A-Za-z0-9_.@-]{1,63}$' THEN
        RAISE EXCEPTION 'invalid username "%"', username
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use 1 to 63 letters, digits, or the characters _ . @ -.';
    END IF;
    PERFORM crm_dashboard.check_password(password);
    INSERT INTO crm_dashboard.dashboard_user AS u (username, password_hash, role)
    VALUES (username, crm_dashboard.hash_password(password), crm_dashboard.dashboard_role(role))
    RETURNING json_build_object('username', u.username, 'role', u.role, 'created_at', u.created_at)
        INTO result;
    RETURN result;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'dashboard user "%" already exists', username
        USING ERRCODE = 'unique_violation',
              HINT = 'Choose another name, or use crm_api.set_password to change the password.';
END;
$$;
COMMENT ON FUNCTION crm_api.create_user(text, text, text) IS
    'Admin: add a dashboard user with role viewer, operator or admin.';

CREATE FUNCTION crm_api.set_password(username text, password text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_dashboard.check_password(password);
    UPDATE crm_dashboard.dashboard_user u SET password_hash = crm_dashboard.hash_password(password)
     WHERE u.username = set_password.username;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'dashboard user "%" does not exist', username
            USING ERRCODE = 'PT404', HINT = 'crm_api.users lists the users.';
    END IF;
END;
$$;
COMMENT ON FUNCTION crm_api.set_password(text, text) IS 'Admin: change a dashboard user''s password (their tokens stop working).';

CREATE FUNCTION crm_api.set_user_role(username text, role text) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_role text := crm_dashboard.dashboard_role(role);
    old_role text;
    result json;
BEGIN
    -- lock the admins so that the last one cannot be demoted concurrently
    PERFORM 1 FROM crm_dashboard.dashboard_user WHERE dashboard_user.role = 'crm_dashboard_admin' FOR UPDATE;
    SELECT u.role INTO old_role FROM crm_dashboard.dashboard_user u WHERE u.username = set_user_role.username;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'dashboard user "%" does not exist', username
            USING ERRCODE = 'PT404', HINT = 'crm_api.users lists the users.';
    END IF;
    IF old_role = 'crm_dashboard_admin' AND new_role <> old_role
       AND (SELECT count(*) FROM crm_dashboard.dashboard_user WHERE dashboard_user.role = 'crm_dashboard_admin') = 1 THEN
        RAISE EXCEPTION 'cannot change the role of "%", the last dashboard admin', username
            USING ERRCODE = 'object_in_use', HINT = 'Make another user an admin first.';
    END IF;
    UPDATE crm_dashboard.dashboard_user u SET role = new_role WHERE u.username = set_user_role.username
    RETURNING json_build_object('username', u.username, 'role', u.role) INTO result;
    RETURN result;
END;
$$;
COMMENT ON FUNCTION crm_api.set_user_role(text, text) IS
    'Admin: give a dashboard user another role (viewer, operator or admin); their tokens stop working.';

CREATE FUNCTION crm_api.delete_user(username text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    victim_role text;
BEGIN
    -- lock the admins so two concurrent deletions cannot remove the last one
    PERFORM 1 FROM crm_dashboard.dashboard_user WHERE role = 'crm_dashboard_admin' FOR UPDATE;
    SELECT u.role INTO victim_role FROM crm_dashboard.dashboard_user u
     WHERE u.username = delete_user.username;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'dashboard user "%" does not exist', username
            USING ERRCODE = 'PT404', HINT = 'crm_api.users lists the users.';
    END IF;
    IF victim_role = 'crm_dashboard_admin'
       AND (SELECT count(*) FROM crm_dashboard.dashboard_user WHERE role = 'crm_dashboard_admin') = 1 THEN
        RAISE EXCEPTION 'cannot delete "%", the last dashboard admin', username
            USING ERRCODE = 'object_in_use',
                  HINT = 'Create another admin first.';
    END IF;
    DELETE FROM crm_dashboard.dashboard_user u WHERE u.username = delete_user.username;
END;
$$;
COMMENT ON FUNCTION crm_api.delete_user(text) IS 'Admin: remove a dashboard user (never the last admin).';

CREATE VIEW crm_api.users WITH (security_barrier) AS
    SELECT username, role, created_at, last_login_at FROM crm_dashboard.dashboard_user;
COMMENT ON VIEW crm_api.users IS 'Admin: dashboard users and their roles (no password data).';

REVOKE ALL ON FUNCTION crm_dashboard.dashboard_role(text), crm_dashboard.check_password(text),
    crm_api.login(text, text), crm_api.whoami(), crm_api.create_user(text, text, text),
    crm_api.set_password(text, text), crm_api.delete_user(text), crm_api.logout(),
    crm_api.check_token(), crm_api.set_user_role(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_api.login(text, text) TO crm_dashboard_anon, crm_dashboard_viewer;
GRANT EXECUTE ON FUNCTION crm_api.whoami(), crm_api.logout() TO crm_dashboard_viewer;
GRANT EXECUTE ON FUNCTION crm_api.check_token() TO crm_dashboard_anon, crm_dashboard_viewer;
GRANT EXECUTE ON FUNCTION crm_api.create_user(text, text, text), crm_api.set_password(text, text),
    crm_api.delete_user(text), crm_api.set_user_role(text, text) TO crm_dashboard_admin;
GRANT SELECT ON crm_api.users TO crm_dashboard_admin;
