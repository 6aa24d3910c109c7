-- Alerts people actually receive.  Administrators write rules (what to
-- watch, where to send it) and channels (a signed webhook, a Slack incoming
-- webhook, e-mail over SMTP).  An alert is a row written in the transaction
-- of the state change it reports: a run's outcome (read from the runs as
-- they are recorded), an automatic pause and a change of freshness (the
-- events of crm_dashboard.emit_event).  One alert is open per rule and
-- model; repeats count, and it resolves itself when the condition clears.
-- Every notice goes into an outbox, one row per alert event and channel, in
-- that same transaction; the alerts worker (src/delivery*.c) delivers the
-- outbox with retries.  Operators acknowledge and snooze alerts.
--
-- Secrets (webhook URLs, signing secrets, SMTP passwords) are readable by
-- administrators only; everything else by viewers.

-- ---- What a rule can watch ---------------------------------------------------

-- The watches and their parameters, written once: validation, the API and
-- the web UI's forms (crm_api.capabilities) all read them from here.
CREATE FUNCTION crm_dashboard.alert_watches() RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '[
  {"watch": "run_failed", "label": "A sync failed",
   "help": "A sync failed once its retries were used up (or at every failed attempt). Resolves when a sync of the model succeeds.",
   "params": [{"name": "every_attempt", "type": "boolean", "default": false,
               "help": "Alert at every failed attempt, not only when the retries are used up"}]},
  {"watch": "consecutive_failures", "label": "Consecutive failures",
   "help": "The model''s last finished syncs all failed (waits for a rate limit do not count). Resolves when one succeeds.",
   "params": [{"name": "count", "type": "integer", "default": 3, "min": 2, "max": 1000,
               "help": "Failures in a row"}]},
  {"watch": "auto_paused", "label": "Paused automatically",
   "help": "The model was paused after too many consecutive failures (the retry policy''s pause_after_failures). Resolves when it is resumed.",
   "params": []},
  {"watch": "action_required", "label": "Action required",
   "help": "A sync failed for a reason retrying cannot fix: exit status 77 or 78, or an error marked not retryable. Resolves with the next sync that does not.",
   "params": []},
  {"watch": "freshness", "label": "Late or overdue",
   "help": "The model''s data is late or overdue for its expected cadence. Resolves when it is on time again.",
   "params": [{"name": "level", "type": "choice", "choices": ["late", "overdue"], "default": "late",
               "help": "Alert when late (or worse), or only when overdue"}]},
  {"watch": "stalled", "label": "Stalled",
   "help": "A sync printed nothing for its stall timeout and was stopped. Resolves when a sync succeeds.",
   "params": []},
  {"watch": "partial", "label": "Failed records",
   "help": "A sync finished with more than a share of its records failed. Resolves with a sync under the share.",
   "params": [{"name": "failed_percent", "type": "number", "default": 5, "min": 0.01, "max": 100, "unit": "%",
               "help": "Share of the processed records that failed"}]},
  {"watch": "slow", "label": "Much slower than usual",
   "help": "A sync runs or ran much longer than the median of the model''s recent successful syncs. Resolves with a sync of usual length.",
   "params": [{"name": "factor", "type": "number", "default": 2, "min": 1.1, "max": 100,
               "help": "Times the usual duration"},
              {"name": "min_runs", "type": "integer", "default": 5, "min": 2, "max": 100,
               "help": "Successful syncs needed to know what is usual"},
              {"name": "min_seconds", "type": "integer", "default": 60, "min": 0, "max": 86400, "unit": "s",
               "help": "Never alert for a sync shorter than this"}]}
]'::jsonb;
COMMENT ON FUNCTION crm_dashboard.alert_watches() IS
    'Private: what an alert rule can watch (run_failed, consecutive_failures, auto_paused, action_required, freshness, stalled, partial, slow), with each watch''s parameters, defaults and ranges.';

-- Check a rule's parameters against its watch; returns them with every
-- default filled in.  Errors name the parameter (as the detail, "params.x")
-- and the value.
CREATE FUNCTION crm_dashboard.check_alert_params(watch text, params jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    def jsonb := (SELECT w FROM jsonb_array_elements(crm_dashboard.alert_watches()) w WHERE w ->> 'watch' = check_alert_params.watch);
    known text[];
    key text;
    p jsonb;
    v jsonb;
    result jsonb := '{}';
BEGIN
    IF def IS NULL THEN
        RAISE EXCEPTION 'unknown alert watch "%"', watch
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'watch',
                  HINT = 'Watch one of: ' || (SELECT string_agg(w ->> 'watch', ', ')
                                                FROM jsonb_array_elements(crm_dashboard.alert_watches()) w) || '.';
    END IF;
    params := coalesce(params, '{}');
    IF jsonb_typeof(params) <> 'object' THEN
        RAISE EXCEPTION 'the parameters of an alert rule must be a JSON object, not %', params
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'params',
                  HINT = 'Pass e.g. {"count": 3}; {} takes the defaults.';
    END IF;
    known := ARRAY(SELECT q ->> 'name' FROM jsonb_array_elements(def -> 'params') q);
    FOR key IN SELECT jsonb_object_keys(params) LOOP
        IF NOT key = ANY (known) THEN
            RAISE EXCEPTION 'unknown parameter "%" of a % rule', key, watch
                USING ERRCODE = 'invalid_parameter_value', DETAIL = 'params',
                      HINT = CASE WHEN cardinality(known) = 0 THEN format('%s rules take no parameters.', watch)
                                  ELSE format('%s rules take %s.', watch, array_to_string(known, ', ')) END;
        END IF;
    END LOOP;
    FOR p IN SELECT q FROM jsonb_array_elements(def -> 'params') q LOOP
        v := coalesce(params -> (p ->> 'name'), p -> 'default');
        IF p ->> 'type' = 'boolean' AND jsonb_typeof(v) <> 'boolean'
           OR p ->> 'type' = 'integer' AND NOT (jsonb_typeof(v) = 'number' AND v::text ~ '^-?[0-9]+$'
                                               AND v::numeric BETWEEN (p ->> 'min')::numeric AND (p ->> 'max')::numeric)
           OR p ->> 'type' = 'number' AND NOT (jsonb_typeof(v) = 'number'
                                              AND v::numeric BETWEEN (p ->> 'min')::numeric AND (p ->> 'max')::numeric)
           OR p ->> 'type' = 'choice' AND NOT (jsonb_typeof(v) = 'string' AND (p -> 'choices') ? (v #>> '{}')) THEN
            PERFORM crm_dashboard.policy_value_error('params.' || (p ->> 'name'), v::text,
                CASE p ->> 'type'
                    WHEN 'boolean' THEN 'true or false'
                    WHEN 'choice' THEN 'one of ' || (SELECT string_agg(c, ', ') FROM jsonb_array_elements_text(p -> 'choices') c)
                    ELSE format('%s between %s and %s', CASE WHEN p ->> 'type' = 'integer' THEN 'an integer' ELSE 'a number' END,
                                p ->> 'min', p ->> 'max') END,
                format('%s (default %s).', p ->> 'help', p -> 'default'));
        END IF;
        result := result || jsonb_build_object(p ->> 'name', v);
    END LOOP;
    RETURN result;
END
$$;
COMMENT ON FUNCTION crm_dashboard.check_alert_params(text, jsonb) IS
    'Private: check an alert rule''s parameters against its watch (unknown names, types, ranges) and return them with the defaults filled in.';

-- ---- Channels ---------------------------------------------------------------

CREATE TABLE crm_dashboard.alert_channel (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                 text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    kind                 text NOT NULL CHECK (kind IN ('webhook', 'slack', 'email')),
    -- secrets: the target URL (a Slack URL is a credential), the signing
    -- secret of a webhook, the SMTP password
    url                  text NOT NULL,
    secret               text,
    smtp_username        text,
    smtp_password        text,
    mail_from            text,
    mail_to              text[],
    require_tls          boolean NOT NULL DEFAULT false,
    enabled              boolean NOT NULL DEFAULT true,
    created_by           text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_by           text,
    updated_at           timestamptz,
    -- how deliveries go, kept by the alerts worker (and test_channel)
    last_attempt_at      timestamptz,
    last_success_at      timestamptz,
    last_failure_at      timestamptz,
    last_error           text,
    consecutive_failures integer NOT NULL DEFAULT 0,
    attempts_total       bigint NOT NULL DEFAULT 0,
    failures_total       bigint NOT NULL DEFAULT 0,
    CONSTRAINT alert_channel_webhook_secret CHECK (kind <> 'webhook' OR length(secret) >= 16),
    CONSTRAINT alert_channel_email_addresses CHECK (kind <> 'email' OR (mail_from IS NOT NULL AND cardinality(mail_to) >= 1))
);
COMMENT ON TABLE crm_dashboard.alert_channel IS
    'Private: where alert notifications go (webhook, slack, email), with their secrets and delivery health; write it with crm_api.create_alert_channel and update_alert_channel.';
COMMENT ON COLUMN crm_dashboard.alert_channel.url IS
    'Secret: the webhook URL (http or https), the Slack incoming-webhook URL, or the SMTP server (smtp:// with STARTTLS when offered, smtps://).';
COMMENT ON COLUMN crm_dashboard.alert_channel.secret IS
    'Secret: the key of a webhook''s X-Crm-Dashboard-Signature (HMAC-SHA256 of "<timestamp>.<body>").';
REVOKE ALL ON crm_dashboard.alert_channel FROM PUBLIC;
GRANT SELECT (id, name, kind, require_tls, enabled, created_by, created_at, updated_by, updated_at,
              last_attempt_at, last_success_at, last_failure_at, last_error, consecutive_failures,
              attempts_total, failures_total)
    ON crm_dashboard.alert_channel TO crm_dashboard_viewer;
GRANT SELECT ON crm_dashboard.alert_channel TO crm_dashboard_admin;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_channel', '');
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_channel_id_seq', '');

-- ---- Rules ------------------------------------------------------------------

CREATE TABLE crm_dashboard.alert_rule (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text NOT NULL UNIQUE CHECK (name <> '' AND length(name) <= 100),
    watch          text NOT NULL,
    crm            text REFERENCES crm_dashboard.crm_source (name) ON UPDATE CASCADE ON DELETE CASCADE,
    model          text,
    params         jsonb NOT NULL DEFAULT '{}',
    severity       text NOT NULL DEFAULT 'warning' CHECK (severity IN ('info', 'warning', 'critical')),
    renotify_after interval CHECK (renotify_after BETWEEN '1 minute' AND '7 days'),
    enabled        boolean NOT NULL DEFAULT true,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_by     text,
    updated_at     timestamptz,
    CONSTRAINT alert_rule_scope CHECK (model IS NULL OR crm IS NOT NULL),
    CONSTRAINT alert_rule_watch CHECK (watch IN ('run_failed', 'consecutive_failures', 'auto_paused', 'action_required',
                                                 'freshness', 'stalled', 'partial', 'slow'))
);
COMMENT ON TABLE crm_dashboard.alert_rule IS
    'Private: alert rules (what to watch, for which CRM or model, where to send it); write them with crm_api.create_alert_rule.';
CREATE INDEX alert_rule_scope_index ON crm_dashboard.alert_rule (watch, crm, model) WHERE enabled;
REVOKE ALL ON crm_dashboard.alert_rule FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_rule', '');
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_rule_id_seq', '');

CREATE TABLE crm_dashboard.alert_rule_channel (
    rule_id    bigint NOT NULL REFERENCES crm_dashboard.alert_rule (id) ON DELETE CASCADE,
    channel_id bigint NOT NULL REFERENCES crm_dashboard.alert_channel (id) ON DELETE CASCADE,
    PRIMARY KEY (rule_id, channel_id)
);
COMMENT ON TABLE crm_dashboard.alert_rule_channel IS 'Private: the channels each alert rule sends to.';
CREATE INDEX alert_rule_channel_channel ON crm_dashboard.alert_rule_channel (channel_id);
REVOKE ALL ON crm_dashboard.alert_rule_channel FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_rule_channel', '');

-- The enabled rules that watch one of watches for a model of a CRM.
CREATE FUNCTION crm_dashboard.rules_for(crm text, model text, watches text[])
RETURNS SETOF crm_dashboard.alert_rule
LANGUAGE sql STABLE
ROWS 2
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.* FROM crm_dashboard.alert_rule r
     WHERE r.enabled AND r.watch = ANY (rules_for.watches)
       AND (r.crm IS NULL OR r.crm = rules_for.crm) AND (r.model IS NULL OR r.model = rules_for.model)
     ORDER BY r.id
$$;
COMMENT ON FUNCTION crm_dashboard.rules_for(text, text, text[]) IS
    'Private: the enabled alert rules watching one of watches whose scope (every CRM, a CRM, a model) covers the model.';

-- The ids of the channels named, or an error naming the first unknown one.
CREATE FUNCTION crm_dashboard.channel_ids(names text[]) RETURNS bigint[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    unknown text;
BEGIN
    IF array_ndims(names) > 1 THEN
        RAISE EXCEPTION 'channels must be a list of channel names'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'channels';
    END IF;
    SELECT n INTO unknown FROM unnest(coalesce(names, '{}')) n
     WHERE n IS NULL OR NOT EXISTS (SELECT 1 FROM crm_dashboard.alert_channel c WHERE c.name = n) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'unknown alert channel %', coalesce(quote_literal(unknown), 'NULL')
            USING ERRCODE = 'undefined_object', DETAIL = 'channels',
                  HINT = coalesce('Channels: ' || (SELECT string_agg(c.name, ', ' ORDER BY c.name) FROM crm_dashboard.alert_channel c) || '.',
                                  'There is no channel yet; an administrator creates one with crm_api.create_alert_channel.');
    END IF;
    RETURN ARRAY(SELECT DISTINCT c.id FROM crm_dashboard.alert_channel c WHERE c.name = ANY (names) ORDER BY c.id);
END
$$;
COMMENT ON FUNCTION crm_dashboard.channel_ids(text[]) IS 'Private: the ids of alert channels by name; undefined_object names an unknown one.';


-- ---- Alerts -------------------------------------------------------------------

CREATE TABLE crm_dashboard.alert (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id         bigint REFERENCES crm_dashboard.alert_rule (id) ON DELETE SET NULL,
    rule_name       text NOT NULL,
    watch           text NOT NULL,
    severity        text NOT NULL,
    crm             text NOT NULL,
    model           text NOT NULL,
    title           text NOT NULL,
    message         text,
    detail          jsonb NOT NULL DEFAULT '{}',
    run_id          bigint,
    first_seen      timestamptz NOT NULL DEFAULT now(),
    last_seen       timestamptz NOT NULL DEFAULT now(),
    occurrences     integer NOT NULL DEFAULT 1 CHECK (occurrences >= 1),
    acknowledged_at timestamptz,
    acknowledged_by text,
    snoozed_until   timestamptz,
    snoozed_by      text,
    snooze_reason   text,
    resolved_at     timestamptz,
    resolved_by     text,
    resolve_reason  text,
    last_notified_at timestamptz,
    CONSTRAINT alert_acknowledged_check CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL)),
    CONSTRAINT alert_resolved_check CHECK ((resolved_at IS NULL) = (resolve_reason IS NULL))
);
COMMENT ON TABLE crm_dashboard.alert IS
    'Private: alerts, one open per rule and model at most; repeats count in occurrences; resolved ones are kept.';
COMMENT ON COLUMN crm_dashboard.alert.resolved_by IS 'Who resolved it by hand; NULL when it resolved itself.';
-- one open alert per rule and model, whoever fires it
CREATE UNIQUE INDEX alert_one_open ON crm_dashboard.alert (rule_id, crm, model) WHERE resolved_at IS NULL;
CREATE INDEX alert_unresolved ON crm_dashboard.alert (crm, model) WHERE resolved_at IS NULL;
CREATE INDEX alert_recent ON crm_dashboard.alert (last_seen DESC, id DESC);
CREATE INDEX alert_by_rule ON crm_dashboard.alert (rule_id, crm, model, id DESC);
REVOKE ALL ON crm_dashboard.alert FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert', '');
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_id_seq', '');

-- What people and the rules did with an alert.
CREATE TABLE crm_dashboard.alert_log (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id bigint NOT NULL REFERENCES crm_dashboard.alert (id) ON DELETE CASCADE,
    at       timestamptz NOT NULL DEFAULT now(),
    action   text NOT NULL CHECK (action IN ('opened', 'acknowledged', 'snoozed', 'unsnoozed', 'resolved')),
    by       text,
    note     text
);
COMMENT ON TABLE crm_dashboard.alert_log IS
    'Private: when an alert opened, who acknowledged, snoozed or resolved it (by NULL: the rules), with their note.';
CREATE INDEX alert_log_alert ON crm_dashboard.alert_log (alert_id, id);
REVOKE ALL ON crm_dashboard.alert_log FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_log', '');
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_log_id_seq', '');

-- The state of an alert, written once: resolved, snoozed (until a time),
-- acknowledged, else open.
CREATE FUNCTION crm_dashboard.alert_status(resolved_at timestamptz, acknowledged_at timestamptz,
                                           snoozed_until timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN resolved_at IS NOT NULL THEN 'resolved'
            WHEN snoozed_until > now() THEN 'snoozed'
            WHEN acknowledged_at IS NOT NULL THEN 'acknowledged'
            ELSE 'open' END;
COMMENT ON FUNCTION crm_dashboard.alert_status(timestamptz, timestamptz, timestamptz) IS
    'Private: an alert''s state: resolved, snoozed (its snooze has not ended), acknowledged, or open.';

-- ---- The outbox -----------------------------------------------------------------

-- One row per alert event (firing, resolved, reminder) and channel, written
-- in the transaction of the event.  Its uuid is the idempotency key every
-- attempt sends.  The alerts worker claims rows with a lease, so that a
-- worker that dies mid-delivery leaves them to be sent again (at least once).
CREATE TABLE crm_dashboard.alert_notification (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid             uuid NOT NULL UNIQUE,
    alert_id         bigint NOT NULL REFERENCES crm_dashboard.alert (id) ON DELETE CASCADE,
    channel_id       bigint NOT NULL REFERENCES crm_dashboard.alert_channel (id) ON DELETE CASCADE,
    event            text NOT NULL CHECK (event IN ('firing', 'resolved', 'reminder')),
    payload          jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_until      timestamptz,
    delivered_at     timestamptz,
    last_status_code integer,
    last_error       text
);
COMMENT ON TABLE crm_dashboard.alert_notification IS
    'Private: the outbox of alert notifications, one per alert event and channel; uuid is the idempotency key of every attempt.';
CREATE INDEX alert_notification_due ON crm_dashboard.alert_notification (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX alert_notification_alert ON crm_dashboard.alert_notification (alert_id, channel_id, id);
CREATE INDEX alert_notification_channel ON crm_dashboard.alert_notification (channel_id) WHERE status = 'pending';
CREATE INDEX alert_notification_created ON crm_dashboard.alert_notification (created_at);
REVOKE ALL ON crm_dashboard.alert_notification FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_notification', '');
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_notification_id_seq', '');

-- Every delivery attempt: of a notification, or a channel's test.
CREATE TABLE crm_dashboard.alert_delivery (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id bigint REFERENCES crm_dashboard.alert_notification (id) ON DELETE CASCADE,
    channel_id      bigint NOT NULL REFERENCES crm_dashboard.alert_channel (id) ON DELETE CASCADE,
    attempt         integer NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    duration_ms     float8,
    ok              boolean,
    status_code     integer,
    error           text
);
COMMENT ON TABLE crm_dashboard.alert_delivery IS
    'Private: every delivery attempt (a notification''s, or a test''s with notification_id NULL): when, how long, HTTP status or SMTP outcome, error.';
CREATE INDEX alert_delivery_notification ON crm_dashboard.alert_delivery (notification_id, attempt);
CREATE INDEX alert_delivery_channel ON crm_dashboard.alert_delivery (channel_id, id DESC);
CREATE INDEX alert_delivery_unfinished ON crm_dashboard.alert_delivery (id) WHERE finished_at IS NULL;
REVOKE ALL ON crm_dashboard.alert_delivery FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_delivery', '');
SELECT pg_catalog.pg_extension_config_dump('crm_dashboard.alert_delivery_id_seq', '');

-- A link to an alert in the web UI, when crm_dashboard.public_url says where it is.
CREATE FUNCTION crm_dashboard.alert_link(alert_id bigint) RETURNS text
LANGUAGE sql STABLE
RETURN CASE WHEN coalesce(current_setting('crm_dashboard.public_url', true), '') <> ''
            THEN rtrim(current_setting('crm_dashboard.public_url', true), '/') || '/alerts/' || alert_id END;
COMMENT ON FUNCTION crm_dashboard.alert_link(bigint) IS
    'Private: the web UI''s page of an alert under crm_dashboard.public_url, or NULL when it is not set.';

-- An alert as notifications and the API show it.
CREATE FUNCTION crm_dashboard.alert_document(a crm_dashboard.alert) RETURNS jsonb
LANGUAGE sql STABLE
RETURN jsonb_build_object(
    'id', a.id, 'status', crm_dashboard.alert_status(a.resolved_at, a.acknowledged_at, a.snoozed_until),
    'rule', jsonb_build_object('id', a.rule_id, 'name', a.rule_name, 'watch', a.watch),
    'severity', a.severity, 'crm', a.crm, 'model', a.model, 'title', a.title, 'message', a.message,
    'detail', a.detail, 'run_id', a.run_id, 'first_seen', a.first_seen, 'last_seen', a.last_seen,
    'occurrences', a.occurrences, 'acknowledged_by', a.acknowledged_by, 'resolved_at', a.resolved_at,
    'resolve_reason', a.resolve_reason, 'url', crm_dashboard.alert_link(a.id));
COMMENT ON FUNCTION crm_dashboard.alert_document(crm_dashboard.alert) IS 'Private: an alert as JSON, as every notification carries it.';

-- Queue a notice of an alert for each enabled channel of its rule, in this
-- transaction; wake the alerts worker at commit.  Returns how many.
CREATE FUNCTION crm_dashboard.alert_enqueue(alert_id bigint, event text) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    INSERT INTO crm_dashboard.alert_notification (uuid, alert_id, channel_id, event, payload)
    SELECT x.u, x.alert_id, x.channel_id, alert_enqueue.event,
           jsonb_build_object('id', x.u, 'type', 'alert.' || alert_enqueue.event, 'created_at', now(),
                              'alert', x.document)
      -- a volatile select list keeps the subquery apart: one key per row
      FROM (SELECT gen_random_uuid() AS u, a.id AS alert_id, c.id AS channel_id,
                   crm_dashboard.alert_document(a) AS document
              FROM crm_dashboard.alert a
              JOIN crm_dashboard.alert_rule_channel rc ON rc.rule_id = a.rule_id
              JOIN crm_dashboard.alert_channel c ON c.id = rc.channel_id AND c.enabled
             WHERE a.id = alert_enqueue.alert_id) x;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        UPDATE crm_dashboard.alert a SET last_notified_at = now() WHERE a.id = alert_enqueue.alert_id;
        PERFORM crm_dashboard.wake_delivery();
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION crm_dashboard.alert_enqueue(bigint, text) IS
    'Private: put a notice (firing, resolved, reminder) of an alert in the outbox for every enabled channel of its rule; the alerts worker delivers them after commit.';

-- Tell open dashboards at commit that an alert changed (SSE event "alert",
-- NOTIFY crm_dashboard_alert), so that the bell and the pages follow.
CREATE FUNCTION crm_dashboard.announce_event(event text, payload text) RETURNS void
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'crm_dashboard_announce_event';
COMMENT ON FUNCTION crm_dashboard.announce_event(text, text) IS
    'Private: at commit, NOTIFY crm_dashboard_<event> and publish the payload to the event streams as an event of that name (alert).';
CREATE FUNCTION crm_dashboard.announce_alert(alert_id bigint, action text) RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT crm_dashboard.announce_event('alert', json_build_object(
               'id', a.id, 'action', action, 'status', crm_dashboard.alert_status(a.resolved_at, a.acknowledged_at, a.snoozed_until),
               'crm', a.crm, 'model', a.model, 'severity', a.severity, 'watch', a.watch, 'title', left(a.title, 200))::text)
      FROM crm_dashboard.alert a WHERE a.id = alert_id;
END;
COMMENT ON FUNCTION crm_dashboard.announce_alert(bigint, text) IS
    'Private: announce a change of an alert (opened, repeated, acknowledged, snoozed, unsnoozed, resolved) to the event streams at commit.';

-- Record what happened to an alert.
CREATE FUNCTION crm_dashboard.alert_note(alert_id bigint, action text, by text, note text) RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    INSERT INTO crm_dashboard.alert_log (alert_id, action, by, note) VALUES (alert_id, action, by, note);
    SELECT crm_dashboard.announce_alert(alert_id, action);
END;
COMMENT ON FUNCTION crm_dashboard.alert_note(bigint, text, text, text) IS 'Private: log and announce an action on an alert.';

-- The rule fires for a model: open its alert, or count a repeat of the open
-- one.  A new alert starts snoozed while a snooze set on the rule's previous
-- alert for the model still runs (a condition that flaps stays quiet); it is
-- notified unless snoozed.  A repeat is notified again only after the rule's
-- renotify_after, and never while acknowledged or snoozed.  A repeat from
-- the run already counted (a slow run seen running, then finished) only
-- refreshes it.  Returns the alert's id.
CREATE FUNCTION crm_dashboard.alert_fire(rule crm_dashboard.alert_rule, crm text, model text, run_id bigint,
                                         title text, message text, detail jsonb)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    a crm_dashboard.alert;
    inherited crm_dashboard.alert;
    alert_id bigint;
    opened boolean;
BEGIN
    SELECT p.* INTO inherited FROM crm_dashboard.alert p
     WHERE p.rule_id = rule.id AND p.crm = alert_fire.crm AND p.model = alert_fire.model AND p.snoozed_until > now()
     ORDER BY p.id DESC LIMIT 1;
    INSERT INTO crm_dashboard.alert AS x (rule_id, rule_name, watch, severity, crm, model, title, message, detail, run_id,
                                          snoozed_until, snoozed_by, snooze_reason)
    VALUES (rule.id, rule.name, rule.watch, rule.severity, alert_fire.crm, alert_fire.model, left(alert_fire.title, 300),
            left(alert_fire.message, 2000), coalesce(alert_fire.detail, '{}'), alert_fire.run_id,
            inherited.snoozed_until, inherited.snoozed_by, inherited.snooze_reason)
    ON CONFLICT (rule_id, crm, model) WHERE resolved_at IS NULL DO UPDATE
       SET title = EXCLUDED.title, message = EXCLUDED.message, detail = EXCLUDED.detail,
           run_id = coalesce(EXCLUDED.run_id, x.run_id), last_seen = now(),
           occurrences = x.occurrences + CASE WHEN EXCLUDED.run_id IS NOT NULL AND EXCLUDED.run_id = x.run_id THEN 0 ELSE 1 END
    RETURNING x.id, x.xmax = 0 INTO alert_id, opened;
    SELECT x.* INTO a FROM crm_dashboard.alert x WHERE x.id = alert_id;
    IF opened THEN
        PERFORM crm_dashboard.alert_note(a.id, 'opened', NULL,
                                         CASE WHEN a.snoozed_until IS NOT NULL THEN 'snoozed until ' || a.snoozed_until END);
        IF a.snoozed_until IS NULL THEN
            PERFORM crm_dashboard.alert_enqueue(a.id, 'firing');
        END IF;
    ELSE
        PERFORM crm_dashboard.announce_alert(a.id, 'repeated');
        IF rule.renotify_after IS NOT NULL AND a.acknowledged_at IS NULL AND NOT coalesce(a.snoozed_until > now(), false)
           AND (a.last_notified_at IS NULL OR a.last_notified_at + rule.renotify_after <= now()) THEN
            PERFORM crm_dashboard.alert_enqueue(a.id, 'reminder');
        END IF;
    END IF;
    RETURN a.id;
END
$$;
COMMENT ON FUNCTION crm_dashboard.alert_fire(crm_dashboard.alert_rule, text, text, bigint, text, text, jsonb) IS
    'Private: a rule fired for a model: open its alert (notified unless a snooze carries over) or count a repeat (re-notified after renotify_after unless acknowledged or snoozed).';

-- The condition of a rule cleared for a model: resolve its open alert, if
-- any, and send the "resolved" notice where its firing went.
CREATE FUNCTION crm_dashboard.alert_resolve(rule_id bigint, crm text, model text, reason text, by text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a crm_dashboard.alert;
BEGIN
    UPDATE crm_dashboard.alert x SET resolved_at = now(), resolve_reason = left(reason, 500), resolved_by = by
     WHERE x.rule_id = alert_resolve.rule_id AND x.crm = alert_resolve.crm AND x.model = alert_resolve.model
       AND x.resolved_at IS NULL
    RETURNING x.* INTO a;
    IF a.id IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM crm_dashboard.alert_note(a.id, 'resolved', by, reason);
    IF a.last_notified_at IS NOT NULL THEN
        PERFORM crm_dashboard.alert_enqueue(a.id, 'resolved');
    END IF;
    RETURN a.id;
END
$$;
COMMENT ON FUNCTION crm_dashboard.alert_resolve(bigint, text, text, text, text) IS
    'Private: resolve a rule''s open alert of a model (by NULL: it resolved itself) and notify "resolved" where it was notified.';

-- ---- Watching runs -------------------------------------------------------------

-- How a model is named in alerts: "HubSpot contact".
CREATE FUNCTION crm_dashboard.model_label(crm text, model text) RETURNS text
LANGUAGE sql STABLE
RETURN coalesce((SELECT s.display_name FROM crm_dashboard.crm_source s WHERE s.name = model_label.crm), crm)
       || ' ' || model;
COMMENT ON FUNCTION crm_dashboard.model_label(text, text) IS 'Private: a model as alerts name it, e.g. "HubSpot contact".';

-- Seconds in words, for messages: "45 s", "12 min", "3.5 h".
CREATE FUNCTION crm_dashboard.seconds_text(seconds float8) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN seconds < 120 THEN round(seconds::numeric) || ' s'
            WHEN seconds < 7200 THEN round((seconds / 60)::numeric) || ' min'
            ELSE round((seconds / 3600)::numeric, 1) || ' h' END;
COMMENT ON FUNCTION crm_dashboard.seconds_text(float8) IS 'Private: a duration in words for alert messages (45 s, 12 min, 3.5 h).';

-- How many of a model's latest finished runs failed in a row (waits for a
-- rate limit do not count, as for automatic pauses); at most 1001 are read.
CREATE FUNCTION crm_dashboard.consecutive_failures(crm text, model text) RETURNS integer
LANGUAGE sql STABLE
AS $$
    SELECT count(*)::integer FROM (
        SELECT h.status, bool_or(h.status <> 'failed') OVER (ORDER BY h.start_time DESC, h.id DESC) AS broken
          FROM (SELECT h.status, h.start_time, h.id FROM crm_dashboard.sync_history h
                 WHERE h.crm_source = consecutive_failures.crm AND h.sync_type = consecutive_failures.model
                   AND h.status IN ('success', 'partial', 'failed') AND h.error_class IS DISTINCT FROM 'rate_limited'
                 ORDER BY h.start_time DESC, h.id DESC LIMIT 1001) h) s
     WHERE NOT s.broken
$$;
COMMENT ON FUNCTION crm_dashboard.consecutive_failures(text, text) IS
    'Private: how many of a model''s latest finished runs failed in a row (rate-limit waits not counted; at most 1001).';

-- What is usual for a model: the median duration of its last 20
-- successful (or partial) runs before run before_id, and how many there were.
CREATE FUNCTION crm_dashboard.usual_duration(crm text, model text, before_id bigint,
                                             OUT seconds float8, OUT runs integer)
RETURNS record
LANGUAGE sql STABLE
AS $$
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d.s), count(*)::integer
      FROM (SELECT extract(epoch FROM h.end_time - h.start_time)::float8 AS s FROM crm_dashboard.sync_history h
             WHERE h.crm_source = usual_duration.crm AND h.sync_type = usual_duration.model
               AND h.status IN ('success', 'partial') AND h.id <> usual_duration.before_id
               AND h.end_time IS NOT NULL
             ORDER BY h.start_time DESC, h.id DESC LIMIT 20) d
$$;
COMMENT ON FUNCTION crm_dashboard.usual_duration(text, text, bigint) IS
    'Private: the median duration of a model''s last 20 successful or partial runs (other than before_id) and how many they were.';

-- Whether a failed run's request is over: no later attempt of it is queued
-- or running (the launcher decided on a retry in the same transaction).
CREATE FUNCTION crm_dashboard.request_over(r crm_dashboard.sync_history) RETURNS boolean
LANGUAGE sql STABLE
RETURN NOT EXISTS (SELECT 1 FROM crm_dashboard.sync_history a
                    WHERE a.first_attempt_id = coalesce(r.first_attempt_id, r.id) AND a.id > r.id
                      AND a.status IN ('queued', 'running'));
COMMENT ON FUNCTION crm_dashboard.request_over(crm_dashboard.sync_history) IS
    'Private: whether no further attempt of a run''s request is queued or running.';

-- A slow run, seen running (tick) or finished: fire the rule if it is.
-- Returns whether it fired.
CREATE FUNCTION crm_dashboard.check_slow(rule crm_dashboard.alert_rule, r crm_dashboard.sync_history) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    took float8 := extract(epoch FROM coalesce(r.end_time, now()) - r.start_time);
    usual record;
    running boolean := r.status = 'running';
BEGIN
    SELECT * INTO usual FROM crm_dashboard.usual_duration(r.crm_source, r.sync_type, r.id);
    IF usual.runs < (rule.params ->> 'min_runs')::integer OR usual.seconds IS NULL OR usual.seconds <= 0
       OR took < (rule.params ->> 'min_seconds')::float8 OR took <= (rule.params ->> 'factor')::float8 * usual.seconds THEN
        RETURN false;
    END IF;
    PERFORM crm_dashboard.alert_fire(rule, r.crm_source, r.sync_type, r.id,
        format('%s: sync much slower than usual', crm_dashboard.model_label(r.crm_source, r.sync_type)),
        format('%s %s, usually %s (%s×)', CASE WHEN running THEN 'running for' ELSE 'took' END,
               crm_dashboard.seconds_text(took), crm_dashboard.seconds_text(usual.seconds),
               round((took / usual.seconds)::numeric, 1)),
        jsonb_build_object('seconds', round(took::numeric, 1), 'usual_seconds', round(usual.seconds::numeric, 1),
                           'usual_runs', usual.runs, 'running', running));
    RETURN true;
END
$$;
COMMENT ON FUNCTION crm_dashboard.check_slow(crm_dashboard.alert_rule, crm_dashboard.sync_history) IS
    'Private: fire a slow rule for a run (running or finished) that took more than factor times its model''s usual duration; true when it did.';

-- One rule against one finished run: fire or resolve.
CREATE FUNCTION crm_dashboard.apply_rule(rule crm_dashboard.alert_rule, r crm_dashboard.sync_history) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    label text := crm_dashboard.model_label(r.crm_source, r.sync_type);
    ok boolean := r.status IN ('success', 'partial');
    cleared text := format('run %s %s', r.id, CASE r.status WHEN 'success' THEN 'succeeded' WHEN 'partial' THEN 'succeeded partly'
                                                            ELSE 'failed for another reason' END);
    what jsonb := jsonb_build_object('run_id', r.id, 'status', r.status, 'error_class', r.error_class,
                                     'attempt', r.attempt, 'max_attempts', r.max_attempts);
    n integer;
    share float8;
BEGIN
    CASE rule.watch
    WHEN 'run_failed' THEN
        IF r.status = 'failed' AND ((rule.params ->> 'every_attempt')::boolean OR crm_dashboard.request_over(r)) THEN
            PERFORM crm_dashboard.alert_fire(rule, r.crm_source, r.sync_type, r.id, label || ': sync failed',
                left(coalesce(r.error_message, 'no error message'), 1000) || CASE WHEN r.max_attempts > 1 THEN format(' (attempt %s of %s)', r.attempt, r.max_attempts) ELSE '' END,
                what);
        ELSIF ok THEN
            PERFORM crm_dashboard.alert_resolve(rule.id, r.crm_source, r.sync_type, cleared);
        END IF;
    WHEN 'consecutive_failures' THEN
        IF r.status = 'failed' THEN
            n := crm_dashboard.consecutive_failures(r.crm_source, r.sync_type);
            IF n >= (rule.params ->> 'count')::integer THEN
                PERFORM crm_dashboard.alert_fire(rule, r.crm_source, r.sync_type, r.id,
                    format('%s: %s consecutive failures', label, CASE WHEN n > 1000 THEN 'over 1000' ELSE n::text END),
                    left(r.error_message, 1000), what || jsonb_build_object('failures', n));
            END IF;
        ELSIF ok THEN
            PERFORM crm_dashboard.alert_resolve(rule.id, r.crm_source, r.sync_type, cleared);
        END IF;
    WHEN 'action_required' THEN
        IF r.status = 'failed' AND r.error_class = 'permanent' THEN
            PERFORM crm_dashboard.alert_fire(rule, r.crm_source, r.sync_type, r.id, label || ': action required',
                left(r.error_message, 1000), what);
        ELSE
            -- as crm_api.crm_models has it: the latest finished run decides
            PERFORM crm_dashboard.alert_resolve(rule.id, r.crm_source, r.sync_type, cleared);
        END IF;
    WHEN 'stalled' THEN
        IF r.status = 'failed' AND r.error_class = 'stalled' THEN
            PERFORM crm_dashboard.alert_fire(rule, r.crm_source, r.sync_type, r.id, label || ': sync stalled',
                left(r.error_message, 1000), what);
        ELSIF ok THEN
            PERFORM crm_dashboard.alert_resolve(rule.id, r.crm_source, r.sync_type, cleared);
        END IF;
    WHEN 'partial' THEN
        IF ok THEN
            share := 100.0 * r.records_failed / nullif(greatest(r.records_processed, r.records_created + r.records_updated + r.records_failed), 0);
            IF r.status = 'partial' AND share > (rule.params ->> 'failed_percent')::float8 THEN
                PERFORM crm_dashboard.alert_fire(rule, r.crm_source, r.sync_type, r.id,
                    format('%s: %s %% of records failed', label, round(share::numeric, 1)),
                    left(r.error_message, 1000),
                    what || jsonb_build_object('records_failed', r.records_failed, 'records_processed', r.records_processed,
                                               'failed_percent', round(share::numeric, 2)));
            ELSE
                PERFORM crm_dashboard.alert_resolve(rule.id, r.crm_source, r.sync_type,
                    format('run %s: %s %% of records failed', r.id, round(coalesce(share, 0)::numeric, 1)));
            END IF;
        END IF;
    WHEN 'slow' THEN
        IF ok AND NOT crm_dashboard.check_slow(rule, r) THEN
            PERFORM crm_dashboard.alert_resolve(rule.id, r.crm_source, r.sync_type,
                format('run %s took the usual time', r.id));
        END IF;
    ELSE
        NULL;
    END CASE;
END
$$;
COMMENT ON FUNCTION crm_dashboard.apply_rule(crm_dashboard.alert_rule, crm_dashboard.sync_history) IS
    'Private: what one rule makes of a finished run: fire (failed, N consecutive failures, action required, stalled, failed records over the share, much slower than usual) or resolve.';

-- The watches a run's outcome speaks to.
CREATE FUNCTION crm_dashboard.run_watches() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY['run_failed', 'consecutive_failures', 'action_required', 'stalled', 'partial', 'slow'];
COMMENT ON FUNCTION crm_dashboard.run_watches() IS 'Private: the watches that a run''s outcome fires or resolves.';

-- Alerts never stop the state change they report: a failure to evaluate
-- them is a WARNING in the server log, and the change commits.
CREATE FUNCTION crm_dashboard.observe_run(run_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r crm_dashboard.sync_history;
    rule crm_dashboard.alert_rule;
BEGIN
    SELECT * INTO r FROM crm_dashboard.sync_history h WHERE h.id = run_id;
    IF NOT FOUND OR r.sync_type = 'all' OR r.status NOT IN ('success', 'partial', 'failed')
       OR NOT EXISTS (SELECT 1 FROM crm_dashboard.rules_for(r.crm_source, r.sync_type, crm_dashboard.run_watches())) THEN
        RETURN;
    END IF;
    BEGIN
        FOR rule IN SELECT * FROM crm_dashboard.rules_for(r.crm_source, r.sync_type, crm_dashboard.run_watches()) LOOP
            PERFORM crm_dashboard.apply_rule(rule, r);
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'crm_dashboard: could not evaluate the alert rules for run %: %', run_id, SQLERRM
            USING DETAIL = 'The run''s outcome is recorded; its alerts are not.';
    END;
END
$$;
COMMENT ON FUNCTION crm_dashboard.observe_run(bigint) IS
    'Private: apply the alert rules to a finished run, in the transaction that recorded it (a failure to do so is a WARNING, never the run''s).';

-- The runs a statement finished, as the statement triggers below see them:
-- the newest of each model (a statement that writes many finished runs of
-- one model at once loads history; its newest run is the news).  Failed
-- runs of the launcher are left to crm_dashboard.after_failure, which
-- observes them once it decided on a retry or a pause.
CREATE FUNCTION crm_dashboard.observe_inserted_runs() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_dashboard.observe_run(f.id)
       FROM (SELECT DISTINCT ON (n.crm_source, n.sync_type) n.id
               FROM inserted_runs n
              WHERE n.status IN ('success', 'partial', 'failed') AND n.sync_type <> 'all'
                AND NOT (n.status = 'failed' AND coalesce(n.configuration ? 'argv', false))
              ORDER BY n.crm_source, n.sync_type, n.start_time DESC, n.id DESC) f;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION crm_dashboard.observe_inserted_runs() IS
    'Private: statement trigger: apply the alert rules to the newest finished run of each model a statement inserted.';

CREATE FUNCTION crm_dashboard.observe_updated_runs() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm_dashboard.observe_run(f.id)
       FROM (SELECT DISTINCT ON (n.crm_source, n.sync_type) n.id
               FROM updated_runs n JOIN runs_before o ON o.id = n.id
              WHERE n.status IS DISTINCT FROM o.status
                AND n.status IN ('success', 'partial', 'failed') AND n.sync_type <> 'all'
                AND NOT (n.status = 'failed' AND coalesce(n.configuration ? 'argv', false))
              ORDER BY n.crm_source, n.sync_type, n.start_time DESC, n.id DESC) f;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION crm_dashboard.observe_updated_runs() IS
    'Private: statement trigger: apply the alert rules to the newest run of each model a statement finished.';

CREATE TRIGGER sync_history_alerts_insert
    AFTER INSERT ON crm_dashboard.sync_history REFERENCING NEW TABLE AS inserted_runs
    FOR EACH STATEMENT EXECUTE FUNCTION crm_dashboard.observe_inserted_runs();
CREATE TRIGGER sync_history_alerts_update
    AFTER UPDATE ON crm_dashboard.sync_history REFERENCING OLD TABLE AS runs_before NEW TABLE AS updated_runs
    FOR EACH STATEMENT EXECUTE FUNCTION crm_dashboard.observe_updated_runs();

-- ---- Watching pauses and freshness ---------------------------------------------

-- What the events of crm_dashboard.emit_event mean for alerts: an automatic
-- pause fires, resuming resolves it; freshness late or overdue fires, on
-- time resolves.  Run outcomes are observed from the runs themselves.
CREATE FUNCTION crm_dashboard.observe_event(kind text, crm text, model text, detail jsonb) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rule crm_dashboard.alert_rule;
    watch text := CASE kind WHEN 'auto_paused' THEN 'auto_paused' WHEN 'resumed' THEN 'auto_paused'
                            WHEN 'freshness' THEN 'freshness' END;
    level text := detail ->> 'to';
    label text := crm_dashboard.model_label(crm, model);
BEGIN
    IF watch IS NULL OR crm IS NULL OR model IS NULL
       OR NOT EXISTS (SELECT 1 FROM crm_dashboard.rules_for(crm, model, ARRAY[watch])) THEN
        RETURN;
    END IF;
    BEGIN
        FOR rule IN SELECT * FROM crm_dashboard.rules_for(crm, model, ARRAY[watch]) LOOP
            IF kind = 'auto_paused' THEN
                PERFORM crm_dashboard.alert_fire(rule, crm, model, NULL, label || ': paused automatically',
                                                 detail ->> 'reason', detail);
            ELSIF kind = 'resumed' AND model IS NOT NULL
                  AND NOT EXISTS (SELECT 1 FROM crm_dashboard.run_pause p
                                   WHERE p.crm = observe_event.crm AND p.model = observe_event.model
                                     AND p.resumed_at IS NULL AND p.automatic) THEN
                -- automatic pauses are a model's own: a whole CRM resumed ends none of them
                PERFORM crm_dashboard.alert_resolve(rule.id, crm, model, 'resumed by ' || coalesce(detail ->> 'by', 'someone'));
            ELSIF kind = 'freshness' THEN
                IF level = 'overdue' OR (level = 'late' AND rule.params ->> 'level' = 'late') THEN
                    PERFORM crm_dashboard.alert_fire(rule, crm, model, NULL, format('%s: data is %s', label, level),
                        'expected by ' || coalesce(to_char((detail ->> 'expected_by')::timestamptz, 'YYYY-MM-DD HH24:MI TZ'), 'unknown'),
                        detail);
                ELSE
                    PERFORM crm_dashboard.alert_resolve(rule.id, crm, model,
                        format('the data is %s now', replace(coalesce(level, 'unknown'), '_', ' ')));
                END IF;
            END IF;
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'crm_dashboard: could not evaluate the alert rules for event % of %: %', kind,
                      coalesce(crm || ' ' || model, crm), SQLERRM
            USING DETAIL = 'The change is recorded; its alerts are not.';
    END;
END
$$;
COMMENT ON FUNCTION crm_dashboard.observe_event(text, text, text, jsonb) IS
    'Private: apply the alert rules to an event of emit_event (auto_paused fires, resumed resolves; freshness late or overdue fires, back on time resolves).';

-- ---- The periodic checks of the alerts worker ------------------------------------

-- Every 30 s (and when a snooze ends) the alerts worker calls this: a snooze
-- that ended on an alert still open reminds its channels; a running sync
-- that became much slower than usual fires; delivered notifications older
-- than 30 days are forgotten.  Returns when it must run again at the latest.
CREATE FUNCTION crm_dashboard.alerts_tick() RETURNS timestamptz
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a crm_dashboard.alert;
    rule crm_dashboard.alert_rule;
    r crm_dashboard.sync_history;
BEGIN
    FOR a IN SELECT x.* FROM crm_dashboard.alert x
              WHERE x.resolved_at IS NULL AND x.snoozed_until <= now() FOR UPDATE SKIP LOCKED LOOP
        UPDATE crm_dashboard.alert x SET snoozed_until = NULL, snoozed_by = NULL, snooze_reason = NULL WHERE x.id = a.id;
        PERFORM crm_dashboard.alert_note(a.id, 'unsnoozed', NULL, 'the snooze ended');
        IF a.acknowledged_at IS NULL THEN
            -- an alert that opened snoozed was never notified: it fires now
            PERFORM crm_dashboard.alert_enqueue(a.id, CASE WHEN a.last_notified_at IS NULL THEN 'firing' ELSE 'reminder' END);
        END IF;
    END LOOP;
    FOR r IN SELECT h.* FROM crm_dashboard.sync_history h
              WHERE h.status = 'running' AND h.sync_type <> 'all'
                AND EXISTS (SELECT 1 FROM crm_dashboard.alert_rule s WHERE s.enabled AND s.watch = 'slow') LOOP
        FOR rule IN SELECT * FROM crm_dashboard.rules_for(r.crm_source, r.sync_type, ARRAY['slow']) LOOP
            PERFORM crm_dashboard.check_slow(rule, r);
        END LOOP;
    END LOOP;
    DELETE FROM crm_dashboard.alert_notification n
     WHERE n.created_at < now() - interval '30 days' AND n.status <> 'pending';
    RETURN least(now() + interval '30 seconds',
                 (SELECT min(x.snoozed_until) FROM crm_dashboard.alert x
                   WHERE x.resolved_at IS NULL AND x.snoozed_until > now()));
END
$$;
COMMENT ON FUNCTION crm_dashboard.alerts_tick() IS
    'Private: the alerts worker''s periodic checks (snoozes that ended remind, running syncs much slower than usual fire, old notifications are forgotten); returns when to look again.';

-- ---- Views ---------------------------------------------------------------------------

CREATE VIEW crm_api.alert_rules AS
    SELECT r.id, r.name, r.watch, r.crm, r.model, r.params, r.severity, r.renotify_after, r.enabled,
           (SELECT coalesce(array_agg(c.name ORDER BY c.name), '{}') FROM crm_dashboard.alert_rule_channel rc
              JOIN crm_dashboard.alert_channel c ON c.id = rc.channel_id WHERE rc.rule_id = r.id) AS channels,
           (SELECT count(*) FROM crm_dashboard.alert a WHERE a.rule_id = r.id AND a.resolved_at IS NULL)::integer AS open_alerts,
           r.created_by, r.created_at, r.updated_by, r.updated_at
      FROM crm_dashboard.alert_rule r
     ORDER BY r.name;

CREATE VIEW crm_api.alerts AS
    SELECT a.id, crm_dashboard.alert_status(a.resolved_at, a.acknowledged_at, a.snoozed_until) AS status,
           a.severity, a.watch, a.rule_id, a.rule_name, a.crm, a.model, a.title, a.message, a.detail, a.run_id,
           a.first_seen, a.last_seen, a.occurrences, a.acknowledged_at, a.acknowledged_by,
           a.snoozed_until, a.snoozed_by, a.snooze_reason, a.resolved_at, a.resolved_by, a.resolve_reason,
           a.last_notified_at,
           (SELECT json_build_object('pending', count(*) FILTER (WHERE n.status = 'pending'),
                                     'delivered', count(*) FILTER (WHERE n.status = 'delivered'),
                                     'failed', count(*) FILTER (WHERE n.status = 'failed'))
              FROM crm_dashboard.alert_notification n WHERE n.alert_id = a.id) AS notifications
      FROM crm_dashboard.alert a
     ORDER BY a.last_seen DESC, a.id DESC;

CREATE VIEW crm_api.open_alerts AS
    SELECT * FROM crm_api.alerts a WHERE a.status <> 'resolved';

CREATE VIEW crm_api.alert_summary AS
    SELECT count(*) FILTER (WHERE s.status = 'open')::integer AS open,
           count(*) FILTER (WHERE s.status = 'acknowledged')::integer AS acknowledged,
           count(*) FILTER (WHERE s.status = 'snoozed')::integer AS snoozed,
           count(*) FILTER (WHERE s.status = 'open' AND s.severity = 'critical')::integer AS open_critical,
           count(*) FILTER (WHERE s.status = 'open' AND s.severity = 'warning')::integer AS open_warning,
           count(*) FILTER (WHERE s.status = 'open' AND s.severity = 'info')::integer AS open_info,
           (SELECT count(*) FROM crm_dashboard.alert r WHERE r.resolved_at > now() - interval '1 day')::integer AS resolved_last_day,
           (SELECT count(*) FROM crm_dashboard.alert_channel c WHERE c.enabled AND c.consecutive_failures >= 3)::integer AS failing_channels
      FROM (SELECT crm_dashboard.alert_status(a.resolved_at, a.acknowledged_at, a.snoozed_until) AS status, a.severity
              FROM crm_dashboard.alert a WHERE a.resolved_at IS NULL) s;

-- Per model with unresolved alerts: the badges of CRM cards and model rows.
CREATE VIEW crm_api.alert_counts AS
    SELECT a.crm, a.model,
           count(*) FILTER (WHERE s.status = 'open')::integer AS open,
           count(*) FILTER (WHERE s.status = 'acknowledged')::integer AS acknowledged,
           count(*) FILTER (WHERE s.status = 'snoozed')::integer AS snoozed,
           (array_agg(a.severity ORDER BY array_position(ARRAY['critical', 'warning', 'info'], a.severity))
              FILTER (WHERE s.status <> 'snoozed'))[1] AS severity,
           (array_agg(a.title ORDER BY a.last_seen DESC) FILTER (WHERE s.status <> 'snoozed'))[1] AS latest_title
      FROM crm_dashboard.alert a
     CROSS JOIN LATERAL (SELECT crm_dashboard.alert_status(a.resolved_at, a.acknowledged_at, a.snoozed_until) AS status) s
     WHERE a.resolved_at IS NULL
     GROUP BY a.crm, a.model
     ORDER BY a.crm, a.model;

CREATE VIEW crm_api.alert_history AS
    SELECT l.id, l.alert_id, l.at, l.action, l.by, l.note
      FROM crm_dashboard.alert_log l
     ORDER BY l.at DESC, l.id DESC;

COMMENT ON VIEW crm_api.alerts IS
    'Every alert, newest first: status (open, acknowledged, snoozed, resolved), severity, rule, model, title and message of the latest occurrence, first and last seen, occurrences, who acknowledged or snoozed it, how it resolved, its notifications by status.';
COMMENT ON VIEW crm_api.open_alerts IS 'The alerts not resolved (open, acknowledged or snoozed), newest first.';
CREATE VIEW crm_api.alert_watches AS
    SELECT w ->> 'watch' AS watch, w ->> 'label' AS label, w ->> 'help' AS help, w -> 'params' AS params
      FROM jsonb_array_elements(crm_dashboard.alert_watches()) WITH ORDINALITY AS x(w, o)
     ORDER BY x.o;
COMMENT ON VIEW crm_api.alert_watches IS
    'What an alert rule can watch, in words, with its parameters (name, type, default, range, help): the web UI builds its rule form from it.';

COMMENT ON VIEW crm_api.alert_summary IS
    'One row: open, acknowledged and snoozed alerts, open ones by severity, resolved in the last day, failing channels (the bell of the web UI).';
COMMENT ON VIEW crm_api.alert_counts IS
    'Per model with unresolved alerts: how many are open, acknowledged, snoozed; the worst severity and latest title of those not snoozed.';
COMMENT ON VIEW crm_api.alert_history IS 'What happened to alerts: opened, acknowledged, snoozed, unsnoozed, resolved, by whom (NULL: the rules), with notes.';
COMMENT ON VIEW crm_api.alert_rules IS
    'Alert rules: watch and params, scope (crm, model; NULL: all), severity, renotify_after, enabled, channels, open alerts.';

-- ---- The API ------------------------------------------------------------------------

-- The error for a channel, rule or alert id that does not exist.
CREATE FUNCTION crm_dashboard.unknown_alert_object(what text, id bigint, listed_in text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '% % does not exist', what, coalesce(id::text, 'NULL')
        USING ERRCODE = 'undefined_object', DETAIL = 'id',
              HINT = format('They are listed in crm_api.%s.', listed_in);
END
$$;
COMMENT ON FUNCTION crm_dashboard.unknown_alert_object(text, bigint, text) IS 'Private: raise undefined_object for an unknown channel, rule or alert id.';

-- A required text argument, trimmed; errors name it.
CREATE FUNCTION crm_dashboard.required_text(field text, value text, max_length integer, hint text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF coalesce(btrim(value), '') = '' THEN
        RAISE EXCEPTION '% must not be empty', field
            USING ERRCODE = 'invalid_parameter_value', DETAIL = field, HINT = hint;
    END IF;
    IF length(value) > max_length THEN
        RAISE EXCEPTION '% is too long (% characters)', field, length(value)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = field,
                  HINT = format('Keep it to %s characters.', max_length);
    END IF;
    RETURN btrim(value);
END
$$;
COMMENT ON FUNCTION crm_dashboard.required_text(text, text, integer, text) IS
    'Private: a required text argument, trimmed, or invalid_parameter_value naming it (empty, too long).';

CREATE FUNCTION crm_dashboard.rule_json(rule_id bigint) RETURNS json
LANGUAGE sql STABLE
AS $$ SELECT row_to_json(r) FROM crm_api.alert_rules r WHERE r.id = rule_id $$;
COMMENT ON FUNCTION crm_dashboard.rule_json(bigint) IS 'Private: a rule as crm_api.alert_rules shows it.';

-- Check a rule's severity and reminder interval; errors name them.
CREATE FUNCTION crm_dashboard.check_rule_options(severity text, renotify_after interval) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF severity IS NULL OR severity NOT IN ('info', 'warning', 'critical') THEN
        PERFORM crm_dashboard.policy_value_error('severity', coalesce(quote_literal(severity), 'NULL'),
            'info, warning or critical', 'Severity sorts and colours alerts; the default is warning.');
    END IF;
    IF renotify_after NOT BETWEEN interval '1 minute' AND interval '7 days' THEN
        PERFORM crm_dashboard.policy_value_error('renotify_after', quote_literal(renotify_after),
            'between 1 minute and 7 days', 'An alert that keeps firing is notified again after this long; NULL (the default) notifies it once.');
    END IF;
END
$$;
COMMENT ON FUNCTION crm_dashboard.check_rule_options(text, interval) IS 'Private: check a rule''s severity and renotify_after.';

CREATE FUNCTION crm_api.create_alert_rule(name text, watch text, crm text DEFAULT NULL, model text DEFAULT NULL,
                                          params jsonb DEFAULT '{}', channels text[] DEFAULT '{}',
                                          severity text DEFAULT 'warning', renotify_after interval DEFAULT NULL,
                                          enabled boolean DEFAULT true)
RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rule_name text := crm_dashboard.required_text('name', name, 100, 'Name the rule, e.g. ''HubSpot failures''.');
    checked jsonb := crm_dashboard.check_alert_params(watch, params);
    ids bigint[] := crm_dashboard.channel_ids(channels);
    rule_id bigint;
BEGIN
    IF model IS NOT NULL AND crm IS NULL THEN
        RAISE EXCEPTION 'a rule for model "%" needs its CRM', model
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'crm',
                  HINT = 'Give crm and model for one model, crm alone for a whole CRM, neither for everything.';
    END IF;
    IF model = 'all' THEN
        RAISE EXCEPTION 'a rule for a whole CRM has no model, not model "all"'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'model', HINT = 'Leave model out.';
    END IF;
    IF crm IS NOT NULL THEN
        PERFORM crm_dashboard.check_target(crm, model);
    END IF;
    PERFORM crm_dashboard.check_rule_options(severity, renotify_after);
    IF EXISTS (SELECT 1 FROM crm_dashboard.alert_rule r WHERE r.name = rule_name) THEN
        RAISE EXCEPTION 'alert rule "%" already exists', rule_name
            USING ERRCODE = 'unique_violation', DETAIL = 'name',
                  HINT = 'Pick another name, or change that rule with crm_api.update_alert_rule.';
    END IF;
    INSERT INTO crm_dashboard.alert_rule AS r (name, watch, crm, model, params, severity, renotify_after, enabled, created_by)
    VALUES (rule_name, watch, crm, model, checked, severity, renotify_after, coalesce(enabled, true),
            crm_dashboard.requester_name())
    RETURNING r.id INTO rule_id;
    INSERT INTO crm_dashboard.alert_rule_channel (rule_id, channel_id) SELECT rule_id, c FROM unnest(ids) c;
    RETURN crm_dashboard.rule_json(rule_id);
END
$$;
COMMENT ON FUNCTION crm_api.create_alert_rule(text, text, text, text, jsonb, text[], text, interval, boolean) IS
    'Create an alert rule: what it watches (crm_api.capabilities() lists the watches and their params), for every CRM, a CRM or one model, the channels it notifies (by name), its severity, and renotify_after (NULL: notify an alert once).';

CREATE FUNCTION crm_api.update_alert_rule(id bigint, name text DEFAULT NULL, params jsonb DEFAULT NULL,
                                          channels text[] DEFAULT NULL, severity text DEFAULT NULL,
                                          renotify_after interval DEFAULT NULL, enabled boolean DEFAULT NULL)
RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r crm_dashboard.alert_rule;
    a record;
BEGIN
    SELECT x.* INTO r FROM crm_dashboard.alert_rule x WHERE x.id = update_alert_rule.id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM crm_dashboard.unknown_alert_object('alert rule', update_alert_rule.id, 'alert_rules');
    END IF;
    IF update_alert_rule.name IS NOT NULL THEN
        r.name := crm_dashboard.required_text('name', update_alert_rule.name, 100, 'Name the rule.');
        IF EXISTS (SELECT 1 FROM crm_dashboard.alert_rule x WHERE x.name = r.name AND x.id <> r.id) THEN
            RAISE EXCEPTION 'alert rule "%" already exists', r.name
                USING ERRCODE = 'unique_violation', DETAIL = 'name', HINT = 'Pick another name.';
        END IF;
    END IF;
    IF update_alert_rule.params IS NOT NULL THEN
        r.params := crm_dashboard.check_alert_params(r.watch, update_alert_rule.params);
    END IF;
    r.severity := coalesce(update_alert_rule.severity, r.severity);
    -- '0' turns reminders off
    r.renotify_after := CASE WHEN update_alert_rule.renotify_after IS NULL THEN r.renotify_after
                             WHEN update_alert_rule.renotify_after = interval '0' THEN NULL
                             ELSE update_alert_rule.renotify_after END;
    PERFORM crm_dashboard.check_rule_options(r.severity, r.renotify_after);
    IF update_alert_rule.channels IS NOT NULL THEN
        DELETE FROM crm_dashboard.alert_rule_channel rc WHERE rc.rule_id = r.id;
        INSERT INTO crm_dashboard.alert_rule_channel (rule_id, channel_id)
        SELECT r.id, c FROM unnest(crm_dashboard.channel_ids(update_alert_rule.channels)) c;
    END IF;
    UPDATE crm_dashboard.alert_rule x
       SET name = r.name, params = r.params, severity = r.severity, renotify_after = r.renotify_after,
           enabled = coalesce(update_alert_rule.enabled, x.enabled),
           updated_by = crm_dashboard.requester_name(), updated_at = now()
     WHERE x.id = r.id;
    IF update_alert_rule.enabled IS FALSE THEN
        -- a rule switched off watches nothing: its alerts could never resolve
        FOR a IN SELECT x.crm, x.model FROM crm_dashboard.alert x WHERE x.rule_id = r.id AND x.resolved_at IS NULL LOOP
            PERFORM crm_dashboard.alert_resolve(r.id, a.crm, a.model, 'the rule was disabled', crm_dashboard.requester_name());
        END LOOP;
    END IF;
    RETURN crm_dashboard.rule_json(r.id);
END
$$;
COMMENT ON FUNCTION crm_api.update_alert_rule(bigint, text, jsonb, text[], text, interval, boolean) IS
    'Change an alert rule: name, params, channels (replacing them), severity, renotify_after (''0'' turns reminders off), enabled; NULL keeps a value.  Disabling a rule resolves its open alerts.  Its watch and scope stay: create another rule for another one.';

CREATE FUNCTION crm_api.delete_alert_rule(id bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a record;
BEGIN
    PERFORM 1 FROM crm_dashboard.alert_rule r WHERE r.id = delete_alert_rule.id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM crm_dashboard.unknown_alert_object('alert rule', delete_alert_rule.id, 'alert_rules');
    END IF;
    -- its open alerts resolve (notified where they were) before its channels go
    FOR a IN SELECT x.crm, x.model FROM crm_dashboard.alert x WHERE x.rule_id = delete_alert_rule.id AND x.resolved_at IS NULL LOOP
        PERFORM crm_dashboard.alert_resolve(delete_alert_rule.id, a.crm, a.model, 'the rule was deleted', crm_dashboard.requester_name());
    END LOOP;
    DELETE FROM crm_dashboard.alert_rule r WHERE r.id = delete_alert_rule.id;
    RETURN true;
END
$$;
COMMENT ON FUNCTION crm_api.delete_alert_rule(bigint) IS
    'Delete an alert rule; its open alerts resolve first; its past alerts are kept (with its name).';


-- ---- Working with alerts (operators) -------------------------------------------------

-- The alert, locked, or the errors for an unknown or resolved one.
CREATE FUNCTION crm_dashboard.alert_for_action(alert_id bigint, action text) RETURNS crm_dashboard.alert
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a crm_dashboard.alert;
BEGIN
    SELECT x.* INTO a FROM crm_dashboard.alert x WHERE x.id = alert_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM crm_dashboard.unknown_alert_object('alert', alert_id, 'alerts');
    END IF;
    IF a.resolved_at IS NOT NULL THEN
        RAISE EXCEPTION 'alert % is resolved', alert_id
            USING ERRCODE = 'PT409', DETAIL = format('It resolved at %s: %s.', a.resolved_at, a.resolve_reason),
                  HINT = format('Only open alerts can be %s.', action);
    END IF;
    RETURN a;
END
$$;
COMMENT ON FUNCTION crm_dashboard.alert_for_action(bigint, text) IS
    'Private: lock an alert an operator acts on; undefined_object when unknown, PT409 (HTTP 409) when resolved.';

CREATE FUNCTION crm_dashboard.alert_json(alert_id bigint) RETURNS json
LANGUAGE sql STABLE
AS $$ SELECT row_to_json(a) FROM crm_api.alerts a WHERE a.id = alert_id $$;
COMMENT ON FUNCTION crm_dashboard.alert_json(bigint) IS 'Private: an alert as crm_api.alerts shows it.';

CREATE FUNCTION crm_api.acknowledge_alert(id bigint, note text DEFAULT NULL) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a crm_dashboard.alert := crm_dashboard.alert_for_action(id, 'acknowledged');
    who text := crm_dashboard.requester_name();
BEGIN
    IF a.acknowledged_at IS NOT NULL THEN
        RAISE EXCEPTION 'alert % is already acknowledged', id
            USING ERRCODE = 'PT409', DETAIL = format('Acknowledged by %s at %s.', a.acknowledged_by, a.acknowledged_at);
    END IF;
    IF length(note) > 500 THEN
        PERFORM crm_dashboard.required_text('note', note, 500, NULL);
    END IF;
    UPDATE crm_dashboard.alert x SET acknowledged_at = now(), acknowledged_by = who WHERE x.id = a.id;
    PERFORM crm_dashboard.alert_note(a.id, 'acknowledged', who, nullif(btrim(note), ''));
    RETURN crm_dashboard.alert_json(a.id);
END
$$;
COMMENT ON FUNCTION crm_api.acknowledge_alert(bigint, text) IS
    'Acknowledge an open alert ("I am on it"), with an optional note: it is no longer counted as open nor notified again; it still resolves (and notifies that) by itself.';

CREATE FUNCTION crm_api.snooze_alert(id bigint, until timestamptz, reason text) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a crm_dashboard.alert := crm_dashboard.alert_for_action(id, 'snoozed');
    who text := crm_dashboard.requester_name();
    why text := crm_dashboard.required_text('reason', reason, 500, 'Say why, e.g. ''HubSpot maintenance until Monday''.');
BEGIN
    IF until IS NULL OR until <= now() THEN
        PERFORM crm_dashboard.policy_value_error('until', coalesce(quote_literal(until), 'NULL'), 'a time in the future',
            'Give the end of the snooze, e.g. now() + interval ''2 hours''.');
    END IF;
    IF until > now() + interval '30 days' THEN
        PERFORM crm_dashboard.policy_value_error('until', quote_literal(until), 'at most 30 days ahead',
            'Disable the rule instead to silence it for longer.');
    END IF;
    UPDATE crm_dashboard.alert x SET snoozed_until = until, snoozed_by = who, snooze_reason = why WHERE x.id = a.id;
    PERFORM crm_dashboard.alert_note(a.id, 'snoozed', who, format('until %s: %s', until, why));
    RETURN crm_dashboard.alert_json(a.id);
END
$$;
COMMENT ON FUNCTION crm_api.snooze_alert(bigint, timestamptz, text) IS
    'Snooze an open alert until a time (at most 30 days), with a reason: no reminders meanwhile, and an alert of the same rule and model that opens before then starts snoozed; when the snooze ends on an alert still open, its channels are reminded.';

CREATE FUNCTION crm_api.unsnooze_alert(id bigint) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a crm_dashboard.alert := crm_dashboard.alert_for_action(id, 'unsnoozed');
    who text := crm_dashboard.requester_name();
BEGIN
    IF NOT coalesce(a.snoozed_until > now(), false) THEN
        RAISE EXCEPTION 'alert % is not snoozed', id
            USING ERRCODE = 'PT409', HINT = 'Snoozed alerts are listed in crm_api.alerts with status snoozed.';
    END IF;
    UPDATE crm_dashboard.alert x SET snoozed_until = NULL, snoozed_by = NULL, snooze_reason = NULL WHERE x.id = a.id;
    PERFORM crm_dashboard.alert_note(a.id, 'unsnoozed', who, NULL);
    RETURN crm_dashboard.alert_json(a.id);
END
$$;
COMMENT ON FUNCTION crm_api.unsnooze_alert(bigint) IS 'End the snooze of an alert now.';

CREATE FUNCTION crm_api.resolve_alert(id bigint, reason text DEFAULT NULL) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a crm_dashboard.alert := crm_dashboard.alert_for_action(id, 'resolved');
    who text := crm_dashboard.requester_name();
BEGIN
    IF length(reason) > 500 THEN
        PERFORM crm_dashboard.required_text('reason', reason, 500, NULL);
    END IF;
    PERFORM crm_dashboard.alert_resolve(a.rule_id, a.crm, a.model,
                                        coalesce(nullif(btrim(reason), ''), 'resolved by ' || who), who);
    RETURN crm_dashboard.alert_json(a.id);
END
$$;
COMMENT ON FUNCTION crm_api.resolve_alert(bigint, text) IS
    'Resolve an alert by hand, with an optional reason (notified "resolved" where it was notified); it opens again if its condition recurs.';

-- ---- Privileges ------------------------------------------------------------------------

REVOKE ALL ON FUNCTION crm_dashboard.alert_watches(), crm_dashboard.check_alert_params(text, jsonb),
    crm_dashboard.rules_for(text, text, text[]), crm_dashboard.channel_ids(text[]),
    crm_dashboard.alert_status(timestamptz, timestamptz, timestamptz), crm_dashboard.alert_link(bigint),
    crm_dashboard.alert_document(crm_dashboard.alert), crm_dashboard.alert_enqueue(bigint, text),
    crm_dashboard.announce_event(text, text), crm_dashboard.announce_alert(bigint, text),
    crm_dashboard.alert_note(bigint, text, text, text),
    crm_dashboard.alert_fire(crm_dashboard.alert_rule, text, text, bigint, text, text, jsonb),
    crm_dashboard.alert_resolve(bigint, text, text, text, text), crm_dashboard.model_label(text, text),
    crm_dashboard.seconds_text(float8), crm_dashboard.consecutive_failures(text, text),
    crm_dashboard.usual_duration(text, text, bigint), crm_dashboard.request_over(crm_dashboard.sync_history),
    crm_dashboard.check_slow(crm_dashboard.alert_rule, crm_dashboard.sync_history),
    crm_dashboard.apply_rule(crm_dashboard.alert_rule, crm_dashboard.sync_history), crm_dashboard.run_watches(),
    crm_dashboard.observe_run(bigint), crm_dashboard.observe_inserted_runs(), crm_dashboard.observe_updated_runs(),
    crm_dashboard.observe_event(text, text, text, jsonb), crm_dashboard.alerts_tick(),
    crm_dashboard.unknown_alert_object(text, bigint, text), crm_dashboard.required_text(text, text, integer, text),
    crm_dashboard.rule_json(bigint), crm_dashboard.check_rule_options(text, interval),
    crm_dashboard.alert_for_action(bigint, text), crm_dashboard.alert_json(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION crm_api.create_alert_rule(text, text, text, text, jsonb, text[], text, interval, boolean),
    crm_api.update_alert_rule(bigint, text, jsonb, text[], text, interval, boolean), crm_api.delete_alert_rule(bigint),
    crm_api.acknowledge_alert(bigint, text), crm_api.snooze_alert(bigint, timestamptz, text),
    crm_api.unsnooze_alert(bigint), crm_api.resolve_alert(bigint, text) FROM PUBLIC;
-- the views call this as their reader
GRANT EXECUTE ON FUNCTION crm_dashboard.alert_status(timestamptz, timestamptz, timestamptz) TO crm_dashboard_viewer;
GRANT EXECUTE ON FUNCTION crm_api.acknowledge_alert(bigint, text), crm_api.snooze_alert(bigint, timestamptz, text),
    crm_api.unsnooze_alert(bigint), crm_api.resolve_alert(bigint, text) TO crm_dashboard_operator;
GRANT EXECUTE ON FUNCTION crm_api.create_alert_rule(text, text, text, text, jsonb, text[], text, interval, boolean),
    crm_api.update_alert_rule(bigint, text, jsonb, text[], text, interval, boolean),
    crm_api.delete_alert_rule(bigint) TO crm_dashboard_admin;
GRANT SELECT ON crm_api.alerts, crm_api.open_alerts, crm_api.alert_summary, crm_api.alert_counts, crm_api.alert_history,
    crm_api.alert_rules, crm_api.alert_watches TO crm_dashboard_viewer;
-- the view reads the list as its owner does; viewers need not call it
GRANT EXECUTE ON FUNCTION crm_dashboard.alert_watches() TO crm_dashboard_viewer;
