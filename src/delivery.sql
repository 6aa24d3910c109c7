-- Delivering alerts (src/delivery*.c): channels and what checks their
-- targets, how a notification reads on each kind of channel, and the
-- alerts worker's steps over the outbox (claim with a lease, record each
-- attempt, retry with backoff, recover after a crash); crm_api.test_channel.

-- The C side (src/delivery_hosts.c, src/delivery_sql.c).
CREATE FUNCTION crm_dashboard.check_delivery_url(kind text, url text) RETURNS text
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'crm_dashboard_check_delivery_url';
COMMENT ON FUNCTION crm_dashboard.check_delivery_url(text, text) IS
    'Private: the URL of a channel of the kind, normalised, or invalid_parameter_value naming it: a scheme the kind may use (http, https; smtp, smtps), a host, and addresses crm_dashboard.delivery_allowed_hosts allows (names are resolved).';
CREATE FUNCTION crm_dashboard.random_secret() RETURNS text
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'crm_dashboard_random_secret';
COMMENT ON FUNCTION crm_dashboard.random_secret() IS
    'Private: 32 random bytes from the operating system''s generator, hex-encoded (a webhook signing secret).';
CREATE FUNCTION crm_dashboard.webhook_signature(secret text, signed_at bigint, body text) RETURNS text
LANGUAGE C IMMUTABLE STRICT
AS 'MODULE_PATHNAME', 'crm_dashboard_webhook_signature';
COMMENT ON FUNCTION crm_dashboard.webhook_signature(text, bigint, text) IS
    'Private: the X-Crm-Dashboard-Signature header of a webhook body: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the secret>.';
CREATE FUNCTION crm_dashboard.wake_delivery() RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'crm_dashboard_wake_delivery';
COMMENT ON FUNCTION crm_dashboard.wake_delivery() IS
    'Private: wake the alerts worker when this transaction commits (new notifications to deliver).';

-- Where a channel sends to, without secrets: scheme, host and port.
CREATE FUNCTION crm_dashboard.channel_target(url text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN regexp_replace(url, '^([a-zA-Z][a-zA-Z0-9+.-]*://)(?:[^@/?#]*@)?([^/?#]*).*$', '\1\2');
COMMENT ON FUNCTION crm_dashboard.channel_target(text) IS
    'Private: the scheme, host and port of a channel''s URL, which anyone may see (its path and credentials are secret).';

-- An e-mail address as a channel takes it: one plain address, no display
-- name, nothing a header could be split at.
CREATE FUNCTION crm_dashboard.check_mail_address(field text, address text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF address IS NULL OR address !~ '^[A-Za-z0-9.!#$%&''*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$'
       OR length(address) > 254 THEN
        RAISE EXCEPTION 'invalid e-mail address % in %', coalesce(quote_literal(address), 'NULL'), field
            USING ERRCODE = 'invalid_parameter_value', DETAIL = field,
                  HINT = 'Give plain addresses such as alerts@example.com, without a display name.';
    END IF;
    RETURN address;
END
$$;
COMMENT ON FUNCTION crm_dashboard.check_mail_address(text, text) IS
    'Private: an e-mail address for a channel (plain addr-spec), or invalid_parameter_value naming it.';


-- ---- Rendering notifications ------------------------------------------------------

-- The words of a notice: a subject line and a plain-text body.
CREATE FUNCTION crm_dashboard.notification_text(payload jsonb, OUT subject text, OUT body text)
RETURNS record
LANGUAGE sql STABLE
AS $$
    SELECT format('[%s] %s', upper(replace(payload ->> 'type', 'alert.', '')), a ->> 'title'),
           concat_ws(E'\n',
               a ->> 'title',
               nullif(a ->> 'message', ''),
               '',
               format('Rule: %s (%s), severity %s', a #>> '{rule,name}', a #>> '{rule,watch}', a ->> 'severity'),
               format('Model: %s %s', a ->> 'crm', a ->> 'model'),
               CASE WHEN a ->> 'run_id' IS NOT NULL THEN format('Run: %s', a ->> 'run_id') END,
               format('First seen %s, last seen %s, %s %s',
                      to_char((a ->> 'first_seen')::timestamptz, 'YYYY-MM-DD HH24:MI:SS TZ'),
                      to_char((a ->> 'last_seen')::timestamptz, 'YYYY-MM-DD HH24:MI:SS TZ'),
                      a ->> 'occurrences', CASE WHEN a ->> 'occurrences' = '1' THEN 'time' ELSE 'times' END),
               CASE WHEN payload ->> 'type' = 'alert.resolved' THEN format('Resolved: %s', a ->> 'resolve_reason') END,
               CASE WHEN a ->> 'url' IS NOT NULL THEN format('Open: %s', a ->> 'url') END,
               '',
               format('Notification %s', payload ->> 'id'))
      FROM (SELECT payload -> 'alert' AS a) x
$$;
COMMENT ON FUNCTION crm_dashboard.notification_text(jsonb) IS
    'Private: the subject ("[FIRING] HubSpot contact: sync failed") and plain-text body of a notification.';

-- A Slack incoming-webhook message.  Text from the data is escaped as Slack
-- asks (&, <, >), so that an error message cannot mention @channel or
-- forge a link.
CREATE FUNCTION crm_dashboard.slack_message(payload jsonb) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT jsonb_build_object(
        'text', concat_ws(E'\n',
            format('%s *%s*', CASE payload ->> 'type' WHEN 'alert.resolved' THEN ':white_check_mark:'
                                                      WHEN 'alert.test' THEN ':test_tube:'
                                                      WHEN 'alert.reminder' THEN ':repeat:'
                                                      ELSE CASE a ->> 'severity' WHEN 'critical' THEN ':red_circle:'
                                                                                 WHEN 'info' THEN ':information_source:'
                                                                                 ELSE ':warning:' END END,
                   crm_dashboard.slack_escape(t.subject)),
            crm_dashboard.slack_escape(nullif(a ->> 'message', '')),
            format('_%s · %s %s · seen %s %s_', crm_dashboard.slack_escape(a #>> '{rule,name}'),
                   crm_dashboard.slack_escape(a ->> 'crm'), crm_dashboard.slack_escape(a ->> 'model'),
                   a ->> 'occurrences', CASE WHEN a ->> 'occurrences' = '1' THEN 'time' ELSE 'times' END),
            CASE WHEN payload ->> 'type' = 'alert.resolved' THEN 'Resolved: ' || crm_dashboard.slack_escape(a ->> 'resolve_reason') END,
            CASE WHEN a ->> 'url' ~ '^https?://[^|<> ]+$' THEN format('<%s|Open in the dashboard>', a ->> 'url') END),
        'unfurl_links', false, 'unfurl_media', false)::text
      FROM (SELECT payload -> 'alert' AS a) x, crm_dashboard.notification_text(payload) t
$$;
COMMENT ON FUNCTION crm_dashboard.slack_message(jsonb) IS
    'Private: a notification as a Slack incoming-webhook message ({"text": ...}, data escaped as Slack asks).';

CREATE FUNCTION crm_dashboard.slack_escape(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN replace(replace(replace(t, '&', '&amp;'), '<', '&lt;'), '>', '&gt;');
COMMENT ON FUNCTION crm_dashboard.slack_escape(text) IS 'Private: text escaped for a Slack message (&, <, >).';

-- A header value without line breaks, encoded (RFC 2047) unless it is plain ASCII.
CREATE FUNCTION crm_dashboard.mail_header_value(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN regexp_replace(value, '[\r\n]+', ' ', 'g') ~ '^[ -~]*$' THEN regexp_replace(value, '[\r\n]+', ' ', 'g')
            ELSE '=?UTF-8?B?' || translate(encode(convert_to(regexp_replace(value, '[\r\n]+', ' ', 'g'), 'UTF8'), 'base64'), E'\n', '')
                 || '?=' END;
COMMENT ON FUNCTION crm_dashboard.mail_header_value(text) IS
    'Private: a mail header value with line breaks removed, as an RFC 2047 encoded word unless plain ASCII.';

-- An e-mail notification: the whole RFC 5322 message, the body in base64
-- (no line of the data can end the message or break a header).
CREATE FUNCTION crm_dashboard.email_message(payload jsonb, mail_from text, mail_to text[]) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT concat_ws(E'\r\n',
        'From: ' || mail_from,
        'To: ' || array_to_string(mail_to, ', '),
        'Subject: ' || crm_dashboard.mail_header_value(t.subject),
        'Date: ' || to_char(now() AT TIME ZONE 'UTC', 'Dy, DD Mon YYYY HH24:MI:SS') || ' +0000',
        'Message-ID: <' || (payload ->> 'id') || '@crm-dashboard>',
        'X-Crm-Dashboard-Delivery: ' || (payload ->> 'id'),
        'X-Crm-Dashboard-Event: ' || (payload ->> 'type'),
        'MIME-Version: 1.0',
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: base64',
        '',
        replace(encode(convert_to(replace(t.body, E'\n', E'\r\n'), 'UTF8'), 'base64'), E'\n', E'\r\n'),
        '')
      FROM crm_dashboard.notification_text(payload) t
$$;
COMMENT ON FUNCTION crm_dashboard.email_message(jsonb, text, text[]) IS
    'Private: a notification as an e-mail (headers, base64 plain-text body); its Message-ID is the notification''s id.';

-- What is sent to a channel of kind: the webhook's JSON as it is, Slack's
-- message, or the e-mail.
CREATE FUNCTION crm_dashboard.notification_body(kind text, payload jsonb, mail_from text, mail_to text[]) RETURNS text
LANGUAGE sql STABLE
RETURN CASE kind WHEN 'webhook' THEN payload::text
                 WHEN 'slack' THEN crm_dashboard.slack_message(payload)
                 WHEN 'email' THEN crm_dashboard.email_message(payload, mail_from, mail_to) END;
COMMENT ON FUNCTION crm_dashboard.notification_body(text, jsonb, text, text[]) IS
    'Private: the body sent to a channel of kind (webhook: the notification JSON; slack: its message; email: the message).';

-- The notification a test of a channel sends: a sample alert, marked as a test.
CREATE FUNCTION crm_dashboard.test_payload(channel_id bigint, id uuid) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT jsonb_build_object('id', id, 'type', 'alert.test', 'created_at', now(), 'test', true,
        'alert', jsonb_build_object('id', NULL, 'status', 'open',
            'rule', jsonb_build_object('id', NULL, 'name', 'test of channel ' || c.name, 'watch', 'test'),
            'severity', 'info', 'crm', 'crm_dashboard', 'model', 'test',
            'title', 'Test notification from crm_dashboard',
            'message', format('Sent by %s to check channel %s; no action is needed.', crm_dashboard.requester_name(), c.name),
            'detail', '{}'::jsonb, 'run_id', NULL, 'first_seen', now(), 'last_seen', now(), 'occurrences', 1,
            'acknowledged_by', NULL, 'resolved_at', NULL, 'resolve_reason', NULL, 'url', NULL))
      FROM crm_dashboard.alert_channel c WHERE c.id = channel_id
$$;
COMMENT ON FUNCTION crm_dashboard.test_payload(bigint, uuid) IS 'Private: the sample notification crm_api.test_channel sends.';

-- ---- Delivering the outbox (the alerts worker, src/delivery_queue.c) --------------

-- A delivery attempt's outcome on its channel's health.
CREATE FUNCTION crm_dashboard.note_channel_attempt(channel_id bigint, ok boolean, error text) RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    UPDATE crm_dashboard.alert_channel c
       SET last_attempt_at = now(), attempts_total = c.attempts_total + 1,
           last_success_at = CASE WHEN ok THEN now() ELSE c.last_success_at END,
           last_failure_at = CASE WHEN ok THEN c.last_failure_at ELSE now() END,
           last_error = CASE WHEN ok THEN c.last_error ELSE left(error, 500) END,
           consecutive_failures = CASE WHEN ok THEN 0 ELSE c.consecutive_failures + 1 END,
           failures_total = c.failures_total + CASE WHEN ok THEN 0 ELSE 1 END
     WHERE c.id = channel_id;
END;
COMMENT ON FUNCTION crm_dashboard.note_channel_attempt(bigint, boolean, text) IS
    'Private: record a delivery attempt in its channel''s health (last success or failure, failures in a row, totals).';

-- At the alerts worker's start: attempts a previous worker left unfinished
-- (it was killed mid-delivery) are recorded as such, and their
-- notifications' leases end, so they are sent again with the same key.
CREATE FUNCTION crm_dashboard.delivery_recover() RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    UPDATE crm_dashboard.alert_delivery d
       SET finished_at = now(), ok = false,
           error = 'the alerts worker stopped during this attempt; the notification is sent again'
     WHERE d.finished_at IS NULL AND d.notification_id IS NOT NULL;
    UPDATE crm_dashboard.alert_notification n SET lease_until = NULL
     WHERE n.status = 'pending' AND n.lease_until IS NOT NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION crm_dashboard.delivery_recover() IS
    'Private: at the alerts worker''s start, end the leases of notifications a previous worker was delivering (they are sent again, with the same idempotency key); returns how many.';

-- The alerts worker's claim step: lease up to slots due notifications, at
-- most per_channel in flight per channel, and never one while an earlier
-- notice of the same alert to the same channel is still pending (so that
-- "resolved" never overtakes "firing").  Each claimed attempt is recorded
-- as started.  The caller commits before sending anything: the lease is
-- what lets a restarted worker find an interrupted delivery.
CREATE FUNCTION crm_dashboard.delivery_claim(slots integer, per_channel integer, lease interval)
RETURNS TABLE (notification_id bigint, uuid uuid, attempt integer, delivery_id bigint, channel text, kind text,
               event text, url text, secret text, smtp_username text, smtp_password text, mail_from text,
               mail_to text[], require_tls boolean, body text)
LANGUAGE plpgsql
ROWS 16
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF coalesce(slots, 0) <= 0 OR coalesce(per_channel, 0) <= 0 OR lease IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH inflight AS (
        SELECT n.channel_id, count(*) AS busy FROM crm_dashboard.alert_notification n
         WHERE n.status = 'pending' AND n.lease_until > now() GROUP BY n.channel_id),
    due AS (
        SELECT n.id, n.channel_id, n.next_attempt_at
          FROM crm_dashboard.alert_notification n
          JOIN crm_dashboard.alert_channel c ON c.id = n.channel_id AND c.enabled
         WHERE n.status = 'pending' AND n.next_attempt_at <= now() AND (n.lease_until IS NULL OR n.lease_until <= now())
           -- a channel at its limit (one that hangs) costs nothing more here
           AND NOT EXISTS (SELECT 1 FROM inflight i WHERE i.channel_id = n.channel_id AND i.busy >= delivery_claim.per_channel)
           AND NOT EXISTS (SELECT 1 FROM crm_dashboard.alert_notification e
                            WHERE e.alert_id = n.alert_id AND e.channel_id = n.channel_id AND e.id < n.id
                              AND e.status = 'pending')
         ORDER BY n.next_attempt_at, n.id
         LIMIT 1000),
    ranked AS (
        SELECT d.id, d.next_attempt_at,
               row_number() OVER (PARTITION BY d.channel_id ORDER BY d.next_attempt_at, d.id) + coalesce(i.busy, 0) AS place
          FROM due d LEFT JOIN inflight i ON i.channel_id = d.channel_id),
    picked AS (
        SELECT n.id FROM crm_dashboard.alert_notification n
          JOIN (SELECT r.id, r.next_attempt_at FROM ranked r WHERE r.place <= delivery_claim.per_channel
                 ORDER BY r.next_attempt_at, r.id LIMIT delivery_claim.slots) r ON r.id = n.id
           FOR UPDATE OF n SKIP LOCKED),
    leased AS (
        UPDATE crm_dashboard.alert_notification n
           SET lease_until = now() + delivery_claim.lease, attempts = n.attempts + 1
          FROM picked WHERE n.id = picked.id
        RETURNING n.*),
    started AS (
        INSERT INTO crm_dashboard.alert_delivery (notification_id, channel_id, attempt)
        SELECT l.id, l.channel_id, l.attempts FROM leased l
        RETURNING alert_delivery.id, alert_delivery.notification_id)
    SELECT l.id, l.uuid, l.attempts, s.id, c.name, c.kind, l.event, c.url, c.secret, c.smtp_username, c.smtp_password,
           c.mail_from, c.mail_to, c.require_tls,
           crm_dashboard.notification_body(c.kind, l.payload, c.mail_from, c.mail_to)
      FROM leased l
      JOIN started s ON s.notification_id = l.id
      JOIN crm_dashboard.alert_channel c ON c.id = l.channel_id
     ORDER BY l.next_attempt_at, l.id;
END
$$;
COMMENT ON FUNCTION crm_dashboard.delivery_claim(integer, integer, interval) IS
    'Private: the alerts worker''s claim step: lease due notifications (per-channel limit, one notice of an alert per channel at a time, in order), record their attempts as started, and return what to send.';

-- An attempt's outcome: delivered; failed for good (permanent, or the last
-- attempt); or retried after exponential backoff with full jitter (at
-- least what the receiver's Retry-After asked, within the cap).
CREATE FUNCTION crm_dashboard.delivery_done(delivery_id bigint, ok boolean, status_code integer, error text,
                                            duration_ms float8, retry_after integer, permanent boolean,
                                            max_attempts integer, backoff_base interval, backoff_cap interval)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d crm_dashboard.alert_delivery;
    outcome text;
BEGIN
    UPDATE crm_dashboard.alert_delivery x
       SET finished_at = now(), duration_ms = delivery_done.duration_ms, ok = coalesce(delivery_done.ok, false),
           status_code = delivery_done.status_code, error = left(delivery_done.error, 1000)
     WHERE x.id = delivery_done.delivery_id AND x.finished_at IS NULL
    RETURNING x.* INTO d;
    IF d.id IS NULL THEN
        RETURN NULL;
    END IF;
    outcome := CASE WHEN d.ok THEN 'delivered'
                    WHEN coalesce(permanent, false) OR d.attempt >= coalesce(max_attempts, 1) THEN 'failed'
                    ELSE 'pending' END;
    UPDATE crm_dashboard.alert_notification n
       SET status = outcome, lease_until = NULL, last_status_code = delivery_done.status_code,
           last_error = CASE WHEN d.ok THEN NULL ELSE left(delivery_done.error, 500) END,
           delivered_at = CASE WHEN d.ok THEN now() END,
           next_attempt_at = CASE WHEN outcome = 'pending'
                                  THEN now() + greatest(crm_dashboard.retry_delay(backoff_base, backoff_cap, d.attempt),
                                                        least(make_interval(secs => greatest(coalesce(retry_after, 0), 0)), backoff_cap))
                                  ELSE n.next_attempt_at END
     WHERE n.id = d.notification_id AND n.status = 'pending';
    PERFORM crm_dashboard.note_channel_attempt(d.channel_id, d.ok, error);
    RETURN outcome;
END
$$;
COMMENT ON FUNCTION crm_dashboard.delivery_done(bigint, boolean, integer, text, float8, integer, boolean, integer, interval, interval) IS
    'Private: record a delivery attempt''s outcome: delivered, failed for good, or pending again after full-jitter backoff (respecting Retry-After within the cap); updates the channel''s health.';

-- A test of a channel, recorded like any attempt.
CREATE FUNCTION crm_dashboard.delivery_tested(channel_id bigint, ok boolean, status_code integer, error text,
                                              duration_ms float8)
RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    INSERT INTO crm_dashboard.alert_delivery (channel_id, attempt, started_at, finished_at, duration_ms, ok, status_code, error)
    SELECT c.id, 1, clock_timestamp() - make_interval(secs => coalesce(duration_ms, 0) / 1000), clock_timestamp(),
           duration_ms, coalesce(ok, false), status_code, left(error, 1000)
      FROM crm_dashboard.alert_channel c WHERE c.id = channel_id;
    SELECT crm_dashboard.note_channel_attempt(channel_id, coalesce(ok, false), error);
END;
COMMENT ON FUNCTION crm_dashboard.delivery_tested(bigint, boolean, integer, text, float8) IS
    'Private: record the attempt of crm_api.test_channel and its effect on the channel''s health.';

-- When the alerts worker must look at the outbox again without being woken:
-- the next retry due, or the end of a lease still running.
CREATE FUNCTION crm_dashboard.delivery_next_due() RETURNS timestamptz
LANGUAGE sql STABLE
AS $$
    SELECT min(t) FROM (
        (SELECT n.next_attempt_at AS t FROM crm_dashboard.alert_notification n
          WHERE n.status = 'pending' AND n.lease_until IS NULL ORDER BY n.next_attempt_at LIMIT 1)
        UNION ALL
        (SELECT min(n.lease_until) FROM crm_dashboard.alert_notification n
          WHERE n.status = 'pending' AND n.lease_until IS NOT NULL)) x
$$;
COMMENT ON FUNCTION crm_dashboard.delivery_next_due() IS
    'Private: when a notification becomes due (a retry, or a lease that ends), if any.';

-- ---- Views ----------------------------------------------------------------------

-- A channel as anyone may see it (no secrets).
CREATE VIEW crm_api.alert_channels AS
    SELECT c.id, c.name, c.kind, crm_dashboard.channel_target(c.url) AS target, c.enabled,
           cardinality(c.mail_to) AS recipients, c.require_tls,
           c.last_attempt_at, c.last_success_at, c.last_failure_at, c.last_error,
           c.consecutive_failures, c.consecutive_failures >= 3 AS failing,
           c.attempts_total, c.failures_total,
           (SELECT count(*) FROM crm_dashboard.alert_notification n
             WHERE n.channel_id = c.id AND n.status = 'pending')::integer AS pending,
           (SELECT coalesce(array_agg(r.name ORDER BY r.name), '{}') FROM crm_dashboard.alert_rule_channel rc
              JOIN crm_dashboard.alert_rule r ON r.id = rc.rule_id WHERE rc.channel_id = c.id) AS rules,
           c.created_by, c.created_at, c.updated_by, c.updated_at
      FROM crm_dashboard.alert_channel c;


CREATE VIEW crm_api.alert_notifications AS
    SELECT n.id, n.uuid, n.alert_id, c.name AS channel, c.kind, n.event, n.status, n.attempts, n.created_at,
           n.next_attempt_at, n.lease_until IS NOT NULL AND n.lease_until > now() AS sending,
           n.delivered_at, n.last_status_code, n.last_error
      FROM crm_dashboard.alert_notification n
      JOIN crm_dashboard.alert_channel c ON c.id = n.channel_id
     ORDER BY n.id DESC;

CREATE VIEW crm_api.alert_deliveries AS
    SELECT d.id, d.notification_id, n.alert_id, c.name AS channel, c.kind, d.attempt, d.started_at, d.finished_at,
           d.duration_ms, d.ok, d.status_code, d.error, d.notification_id IS NULL AS test
      FROM crm_dashboard.alert_delivery d
      JOIN crm_dashboard.alert_channel c ON c.id = d.channel_id
      LEFT JOIN crm_dashboard.alert_notification n ON n.id = d.notification_id
     ORDER BY d.id DESC;

COMMENT ON VIEW crm_api.alert_notifications IS
    'The outbox: each notice of an alert to a channel (firing, resolved, reminder), its status (pending, delivered, failed, cancelled), attempts, next attempt, last HTTP status and error; uuid is its idempotency key.';
COMMENT ON VIEW crm_api.alert_deliveries IS 'Every delivery attempt, newest first: notification (or a test), channel, when, how long, ok, HTTP status, error.';
COMMENT ON VIEW crm_api.alert_channels IS
    'Alert channels without their secrets: kind, target (scheme, host, port), recipients, health (last success and failure, last error, failures in a row, failing after 3), pending notifications, rules.';

-- ---- Managing channels (administrators) ------------------------------------------

CREATE FUNCTION crm_dashboard.channel_json(channel_id bigint) RETURNS json
LANGUAGE sql STABLE
AS $$ SELECT row_to_json(c) FROM crm_api.alert_channels c WHERE c.id = channel_id $$;
COMMENT ON FUNCTION crm_dashboard.channel_json(bigint) IS 'Private: a channel as crm_api.alert_channels shows it.';

-- Check a channel's settings as a whole (kind, URL, secret, addresses);
-- returns the normalised URL.
CREATE FUNCTION crm_dashboard.check_channel(c crm_dashboard.alert_channel) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    url text;
BEGIN
    IF c.name IS NULL OR c.name !~ '^[a-z0-9][a-z0-9_.-]{0,62}$' THEN
        RAISE EXCEPTION 'invalid channel name %', coalesce(quote_literal(c.name), 'NULL')
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'name',
                  HINT = 'Use lower-case letters, digits, "-", "_" and ".", up to 63 characters, e.g. ops-slack.';
    END IF;
    IF c.kind IS NULL OR c.kind NOT IN ('webhook', 'slack', 'email') THEN
        RAISE EXCEPTION 'unknown channel kind %', coalesce(quote_literal(c.kind), 'NULL')
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'kind',
                  HINT = 'A channel is a webhook (signed JSON), slack (an incoming webhook) or email (SMTP).';
    END IF;
    IF c.url IS NULL THEN
        RAISE EXCEPTION 'a % channel needs a url', c.kind
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'url',
                  HINT = CASE c.kind WHEN 'email' THEN 'Give the SMTP server, e.g. smtp://mail.example.com:587 (STARTTLS when offered) or smtps://mail.example.com.'
                                     WHEN 'slack' THEN 'Give the incoming webhook''s URL, https://hooks.slack.com/services/...'
                                     ELSE 'Give the http or https URL that receives the notifications.' END;
    END IF;
    url := crm_dashboard.check_delivery_url(c.kind, c.url);
    IF c.kind = 'webhook' AND length(c.secret) < 16 THEN
        RAISE EXCEPTION 'the signing secret of a webhook must be at least 16 characters long'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'secret',
                  HINT = 'Leave it out to have a random one made.';
    END IF;
    IF c.kind <> 'webhook' AND c.secret IS NOT NULL THEN
        RAISE EXCEPTION 'a % channel has no signing secret', c.kind
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'secret',
                  HINT = CASE WHEN c.kind = 'slack' THEN 'A Slack incoming webhook''s URL is its secret.'
                              ELSE 'Only webhooks are signed.' END;
    END IF;
    IF c.kind = 'email' THEN
        PERFORM crm_dashboard.check_mail_address('mail_from', c.mail_from);
        IF coalesce(cardinality(c.mail_to), 0) = 0 OR array_ndims(c.mail_to) > 1 THEN
            RAISE EXCEPTION 'an email channel needs recipients'
                USING ERRCODE = 'invalid_parameter_value', DETAIL = 'mail_to',
                      HINT = 'Give mail_to as a list of addresses, e.g. {oncall@example.com}.';
        END IF;
        IF cardinality(c.mail_to) > 50 THEN
            RAISE EXCEPTION 'an email channel has at most 50 recipients, not %', cardinality(c.mail_to)
                USING ERRCODE = 'invalid_parameter_value', DETAIL = 'mail_to',
                      HINT = 'Send to a mailing list instead.';
        END IF;
        PERFORM crm_dashboard.check_mail_address('mail_to', m) FROM unnest(c.mail_to) m;
        IF c.smtp_password IS NOT NULL AND c.smtp_username IS NULL THEN
            RAISE EXCEPTION 'an SMTP password needs a user name'
                USING ERRCODE = 'invalid_parameter_value', DETAIL = 'smtp_username',
                      HINT = 'Give smtp_username with smtp_password.';
        END IF;
        IF c.smtp_username ~ '[\r\n\x01-\x1f]' OR c.smtp_password ~ '[\r\n]' THEN
            RAISE EXCEPTION 'SMTP credentials may not contain control characters'
                USING ERRCODE = 'invalid_parameter_value', DETAIL = 'smtp_username';
        END IF;
    ELSE
        IF num_nonnulls(c.mail_from, c.mail_to, c.smtp_username, c.smtp_password) > 0 OR c.require_tls THEN
            RAISE EXCEPTION 'mail_from, mail_to, smtp_username, smtp_password and require_tls are settings of email channels, not of a % channel', c.kind
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = CASE WHEN c.mail_from IS NOT NULL THEN 'mail_from' WHEN c.mail_to IS NOT NULL THEN 'mail_to'
                                    WHEN c.smtp_username IS NOT NULL THEN 'smtp_username'
                                    WHEN c.smtp_password IS NOT NULL THEN 'smtp_password' ELSE 'require_tls' END;
        END IF;
    END IF;
    RETURN url;
END
$$;
COMMENT ON FUNCTION crm_dashboard.check_channel(crm_dashboard.alert_channel) IS
    'Private: check a channel''s settings as a whole (name, kind, URL against the allow-list, secret, addresses); returns the normalised URL.';

CREATE FUNCTION crm_api.create_alert_channel(name text, kind text, url text, secret text DEFAULT NULL,
                                             mail_from text DEFAULT NULL, mail_to text[] DEFAULT NULL,
                                             smtp_username text DEFAULT NULL, smtp_password text DEFAULT NULL,
                                             require_tls boolean DEFAULT false, enabled boolean DEFAULT true)
RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c crm_dashboard.alert_channel;
BEGIN
    c.name := name; c.kind := kind; c.url := url; c.mail_from := mail_from; c.mail_to := mail_to;
    c.smtp_username := nullif(smtp_username, ''); c.smtp_password := nullif(smtp_password, '');
    c.require_tls := coalesce(require_tls, false);
    c.secret := CASE WHEN kind = 'webhook' THEN coalesce(secret, crm_dashboard.random_secret()) ELSE secret END;
    c.url := crm_dashboard.check_channel(c);
    IF EXISTS (SELECT 1 FROM crm_dashboard.alert_channel x WHERE x.name = c.name) THEN
        RAISE EXCEPTION 'alert channel "%" already exists', c.name
            USING ERRCODE = 'unique_violation', DETAIL = 'name',
                  HINT = 'Pick another name, or change that channel with crm_api.update_alert_channel.';
    END IF;
    INSERT INTO crm_dashboard.alert_channel AS x (name, kind, url, secret, smtp_username, smtp_password, mail_from, mail_to,
                                                  require_tls, enabled, created_by)
    VALUES (c.name, c.kind, c.url, c.secret, c.smtp_username, c.smtp_password, c.mail_from, c.mail_to, c.require_tls,
            coalesce(enabled, true), crm_dashboard.requester_name())
    RETURNING x.id INTO c.id;
    RETURN crm_dashboard.channel_json(c.id);
END
$$;
COMMENT ON FUNCTION crm_api.create_alert_channel(text, text, text, text, text, text[], text, text, boolean, boolean) IS
    'Create an alert channel: kind webhook (url, signed with secret, a random one when not given), slack (an incoming webhook''s url) or email (url smtp:// or smtps://, mail_from, mail_to, optional smtp_username and smtp_password, require_tls).  URLs must be http or https (smtp or smtps for email) and reach only hosts crm_dashboard.delivery_allowed_hosts allows.';

CREATE FUNCTION crm_api.update_alert_channel(id bigint, name text DEFAULT NULL, url text DEFAULT NULL,
                                             secret text DEFAULT NULL, mail_from text DEFAULT NULL,
                                             mail_to text[] DEFAULT NULL, smtp_username text DEFAULT NULL,
                                             smtp_password text DEFAULT NULL, require_tls boolean DEFAULT NULL,
                                             enabled boolean DEFAULT NULL)
RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c crm_dashboard.alert_channel;
BEGIN
    SELECT x.* INTO c FROM crm_dashboard.alert_channel x WHERE x.id = update_alert_channel.id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM crm_dashboard.unknown_alert_object('alert channel', update_alert_channel.id, 'alert_channels');
    END IF;
    c.name := coalesce(update_alert_channel.name, c.name);
    c.url := coalesce(update_alert_channel.url, c.url);
    c.secret := coalesce(update_alert_channel.secret, c.secret);
    c.mail_from := coalesce(update_alert_channel.mail_from, c.mail_from);
    c.mail_to := coalesce(update_alert_channel.mail_to, c.mail_to);
    -- '' clears the SMTP credentials
    c.smtp_username := CASE WHEN update_alert_channel.smtp_username IS NULL THEN c.smtp_username
                            ELSE nullif(update_alert_channel.smtp_username, '') END;
    c.smtp_password := CASE WHEN update_alert_channel.smtp_password IS NULL THEN c.smtp_password
                            ELSE nullif(update_alert_channel.smtp_password, '') END;
    c.require_tls := coalesce(update_alert_channel.require_tls, c.require_tls);
    c.url := crm_dashboard.check_channel(c);
    IF EXISTS (SELECT 1 FROM crm_dashboard.alert_channel x WHERE x.name = c.name AND x.id <> c.id) THEN
        RAISE EXCEPTION 'alert channel "%" already exists', c.name
            USING ERRCODE = 'unique_violation', DETAIL = 'name', HINT = 'Pick another name.';
    END IF;
    UPDATE crm_dashboard.alert_channel x
       SET name = c.name, url = c.url, secret = c.secret, mail_from = c.mail_from, mail_to = c.mail_to,
           smtp_username = c.smtp_username, smtp_password = c.smtp_password, require_tls = c.require_tls,
           enabled = coalesce(update_alert_channel.enabled, x.enabled),
           updated_by = crm_dashboard.requester_name(), updated_at = now()
     WHERE x.id = c.id;
    IF update_alert_channel.enabled IS FALSE THEN
        -- a channel switched off sends nothing it still had to send
        UPDATE crm_dashboard.alert_notification n
           SET status = 'cancelled', lease_until = NULL, last_error = 'the channel was disabled'
         WHERE n.channel_id = c.id AND n.status = 'pending';
    ELSE
        PERFORM crm_dashboard.wake_delivery();
    END IF;
    RETURN crm_dashboard.channel_json(c.id);
END
$$;
COMMENT ON FUNCTION crm_api.update_alert_channel(bigint, text, text, text, text, text[], text, text, boolean, boolean) IS
    'Change an alert channel: the values given (NULL keeps one; '''' clears the SMTP credentials) are checked like create_alert_channel''s.  Disabling it cancels its pending notifications.';

CREATE FUNCTION crm_api.delete_alert_channel(id bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM crm_dashboard.alert_channel c WHERE c.id = delete_alert_channel.id;
    IF NOT FOUND THEN
        PERFORM crm_dashboard.unknown_alert_object('alert channel', delete_alert_channel.id, 'alert_channels');
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION crm_api.delete_alert_channel(bigint) IS
    'Delete an alert channel, its notifications and their attempts; rules no longer send to it.';

CREATE FUNCTION crm_api.test_channel(id bigint) RETURNS json
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'crm_dashboard_test_channel';
COMMENT ON FUNCTION crm_api.test_channel(bigint) IS
    'Send a test notification to a channel now and report the result: ok, status_code (HTTP; 250 for SMTP), error, duration_ms, the notification id; the attempt counts in the channel''s health.';

-- The admins' view of channels, with what the others may not see.
CREATE VIEW crm_api.alert_channel_settings AS
    SELECT c.id, c.name, c.kind, c.url, c.secret, c.mail_from, c.mail_to, c.smtp_username,
           c.smtp_password IS NOT NULL AS has_smtp_password, c.require_tls, c.enabled
      FROM crm_dashboard.alert_channel c
     ORDER BY c.name;
COMMENT ON VIEW crm_api.alert_channel_settings IS
    'Administrators only: each channel''s URL, signing secret, addresses and SMTP user name (passwords are never shown).';


-- ---- Privileges ----------------------------------------------------------------------

REVOKE ALL ON FUNCTION crm_dashboard.check_delivery_url(text, text), crm_dashboard.random_secret(),
    crm_dashboard.webhook_signature(text, bigint, text), crm_dashboard.wake_delivery(),
    crm_dashboard.channel_target(text), crm_dashboard.check_mail_address(text, text),
    crm_dashboard.notification_text(jsonb), crm_dashboard.slack_message(jsonb), crm_dashboard.slack_escape(text),
    crm_dashboard.mail_header_value(text), crm_dashboard.email_message(jsonb, text, text[]),
    crm_dashboard.notification_body(text, jsonb, text, text[]), crm_dashboard.test_payload(bigint, uuid),
    crm_dashboard.note_channel_attempt(bigint, boolean, text), crm_dashboard.delivery_recover(),
    crm_dashboard.delivery_claim(integer, integer, interval),
    crm_dashboard.delivery_done(bigint, boolean, integer, text, float8, integer, boolean, integer, interval, interval),
    crm_dashboard.delivery_tested(bigint, boolean, integer, text, float8), crm_dashboard.delivery_next_due(),
    crm_dashboard.channel_json(bigint), crm_dashboard.check_channel(crm_dashboard.alert_channel) FROM PUBLIC;
REVOKE ALL ON FUNCTION crm_api.create_alert_channel(text, text, text, text, text, text[], text, text, boolean, boolean),
    crm_api.update_alert_channel(bigint, text, text, text, text, text[], text, text, boolean, boolean),
    crm_api.delete_alert_channel(bigint), crm_api.test_channel(bigint) FROM PUBLIC;
-- the views call this as their reader
GRANT EXECUTE ON FUNCTION crm_dashboard.channel_target(text) TO crm_dashboard_viewer;
GRANT EXECUTE ON FUNCTION crm_api.create_alert_channel(text, text, text, text, text, text[], text, text, boolean, boolean),
    crm_api.update_alert_channel(bigint, text, text, text, text, text[], text, text, boolean, boolean),
    crm_api.delete_alert_channel(bigint), crm_api.test_channel(bigint) TO crm_dashboard_admin;
GRANT SELECT ON crm_api.alert_channels, crm_api.alert_notifications, crm_api.alert_deliveries TO crm_dashboard_viewer;
GRANT SELECT ON crm_api.alert_channel_settings TO crm_dashboard_admin;
