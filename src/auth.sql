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
    last_login_at timestamptz
);
COMMENT ON TABLE crm_dashboard.dashboard_user IS
    'Private: users of the web dashboard, with SCRAM-SHA-256 password secrets.';
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.dashboard_user', '');

CREATE FUNCTION crm_dashboard.hash_password(password text) RETURNS text
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'crm_dashboard_hash_password';
COMMENT ON FUNCTION crm_dashboard.hash_password(text) IS
    'Private: a salted SCRAM-SHA-256 secret of a password.';

CREATE FUNCTION crm_dashboard.login(username text, password text) RETURNS json
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'crm_dashboard_login';
COMMENT ON FUNCTION crm_dashboard.login(text, text) IS
    'Private: check a dashboard user''s password and sign a token.';

REVOKE ALL ON FUNCTION crm_dashboard.hash_password(text), crm_dashboard.login(text, text) FROM PUBLIC;

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
        'username', CASE WHEN coalesce(current_setting('request.method', true), '') <> ''
                         THEN nullif(current_setting('request.jwt.claims', true), '')::json->>'username'
                         ELSE session_user::text END,
        'role', current_user::text)
$$;
COMMENT ON FUNCTION crm_api.whoami() IS
    'The signed-in dashboard user and role (over HTTP), or the session user and current role (SQL).';

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
COMMENT ON FUNCTION crm_api.set_password(text, text) IS 'Admin: change a dashboard user''s password.';

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
    crm_api.set_password(text, text), crm_api.delete_user(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_api.login(text, text) TO crm_dashboard_anon, crm_dashboard_viewer;
GRANT EXECUTE ON FUNCTION crm_api.whoami() TO crm_dashboard_viewer;
GRANT EXECUTE ON FUNCTION crm_api.create_user(text, text, text), crm_api.set_password(text, text),
    crm_api.delete_user(text) TO crm_dashboard_admin;
GRANT SELECT ON crm_api.users TO crm_dashboard_admin;
