-- Prometheus metrics (GET /metrics, src/http_metrics.c): runs by CRM, model
-- and status, running and queued runs, seconds since each model's last
-- success, freshness, open alerts, deliveries and their failures, and the
-- HTTP workers' own counters (requests by route and status, durations,
-- event streams), all in the text exposition format.

-- The HTTP workers' counters, from their slots of shared memory.
CREATE FUNCTION crm_dashboard.http_metrics_text() RETURNS text
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'crm_dashboard_http_metrics_text';
COMMENT ON FUNCTION crm_dashboard.http_metrics_text() IS
    'Private: the HTTP workers'' requests by route and status, their duration histogram, and open event streams, in the Prometheus text format.';

-- A label value as the text format wants it: \, " and line feeds escaped.
CREATE FUNCTION crm_dashboard.prom_label(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '"' || replace(replace(replace(coalesce(value, ''), E'\\', E'\\\\'), '"', E'\\"'), E'\n', E'\\n') || '"';
COMMENT ON FUNCTION crm_dashboard.prom_label(text) IS 'Private: a Prometheus label value, quoted and escaped.';

-- One metric family: its HELP and TYPE lines, then a sample per row of
-- (labels, value); labels is a jsonb object of label names and values.
CREATE FUNCTION crm_dashboard.prom_family(name text, kind text, help text, samples jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT format(E'# HELP %s %s\n# TYPE %s %s\n', name, help, name, kind)
           || coalesce(string_agg(name
                                  || CASE WHEN s -> 'labels' = '{}' THEN ''
                                          ELSE '{' || (SELECT string_agg(l.key || '=' || crm_dashboard.prom_label(l.value), ',' ORDER BY l.key)
                                                         FROM jsonb_each_text(s -> 'labels') l) || '}' END
                                  || ' ' || (s ->> 'value') || E'\n', '' ORDER BY o), '')
      FROM jsonb_array_elements(coalesce(samples, '[]')) WITH ORDINALITY AS x(s, o)
$$;
COMMENT ON FUNCTION crm_dashboard.prom_family(text, text, text, jsonb) IS
    'Private: one Prometheus metric family (HELP, TYPE, a sample per {labels, value}).';

CREATE FUNCTION crm_dashboard.metrics_text() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT concat(
        crm_dashboard.prom_family('crm_dashboard_runs_total', 'counter',
            'Finished sync runs by CRM, model and status (as kept in the history).',
            (SELECT jsonb_agg(jsonb_build_object('labels', jsonb_build_object('crm', r.crm_source, 'model', r.sync_type, 'status', r.status),
                                                 'value', r.n) ORDER BY r.crm_source, r.sync_type, r.status)
               FROM (SELECT h.crm_source, h.sync_type, h.status, count(*) AS n FROM crm_dashboard.sync_history h
                      WHERE h.status IN ('success', 'partial', 'failed', 'cancelled')
                      GROUP BY 1, 2, 3) r)),
        crm_dashboard.prom_family('crm_dashboard_runs_running', 'gauge', 'Sync runs running now, by CRM.',
            (SELECT jsonb_agg(jsonb_build_object('labels', jsonb_build_object('crm', s.name),
                                                 'value', (SELECT count(*) FROM crm_dashboard.sync_history h
                                                            WHERE h.crm_source = s.name AND h.status = 'running')) ORDER BY s.name)
               FROM crm_dashboard.crm_source s)),
        crm_dashboard.prom_family('crm_dashboard_runs_queued', 'gauge', 'Sync runs queued (retries waiting included), by CRM.',
            (SELECT jsonb_agg(jsonb_build_object('labels', jsonb_build_object('crm', s.name),
                                                 'value', (SELECT count(*) FROM crm_dashboard.sync_history h
                                                            WHERE h.crm_source = s.name AND h.status = 'queued')) ORDER BY s.name)
               FROM crm_dashboard.crm_source s)),
        crm_dashboard.prom_family('crm_dashboard_seconds_since_last_success', 'gauge',
            'Seconds since each model''s last successful (or partial) sync ended.',
            (SELECT jsonb_agg(jsonb_build_object('labels', jsonb_build_object('crm', l.crm_source, 'model', l.sync_type),
                                                 'value', round(extract(epoch FROM now() - l.at)::numeric, 3)) ORDER BY l.crm_source, l.sync_type)
               FROM (SELECT h.crm_source, h.sync_type, max(h.end_time) AS at FROM crm_dashboard.sync_history h
                      WHERE h.status IN ('success', 'partial') AND h.sync_type <> 'all' AND h.end_time IS NOT NULL
                      GROUP BY 1, 2) l)),
        crm_dashboard.prom_family('crm_dashboard_freshness_state', 'gauge',
            'Each model''s freshness as last recorded: 1 for its state, 0 for the others.',
            (SELECT jsonb_agg(jsonb_build_object('labels', jsonb_build_object('crm', f.crm, 'model', f.model, 'state', st.state),
                                                 'value', (f.freshness = st.state)::integer) ORDER BY f.crm, f.model, st.o)
               FROM crm_dashboard.freshness_state f
              CROSS JOIN unnest(ARRAY['on_time', 'late', 'overdue', 'unknown']) WITH ORDINALITY AS st(state, o))),
        crm_dashboard.prom_family('crm_dashboard_alerts_open', 'gauge',
            'Unresolved alerts by severity and status (open, acknowledged, snoozed).',
            (SELECT jsonb_agg(jsonb_build_object('labels', jsonb_build_object('severity', sv.severity, 'status', st.status),
                                                 'value', (SELECT count(*) FROM crm_dashboard.alert a
                                                            WHERE a.resolved_at IS NULL AND a.severity = sv.severity
                                                              AND crm_dashboard.alert_status(a.resolved_at, a.acknowledged_at, a.snoozed_until) = st.status))
                              ORDER BY sv.o, st.o)
               FROM unnest(ARRAY['critical', 'warning', 'info']) WITH ORDINALITY AS sv(severity, o)
              CROSS JOIN unnest(ARRAY['open', 'acknowledged', 'snoozed']) WITH ORDINALITY AS st(status, o))),
        crm_dashboard.prom_family('crm_dashboard_delivery_attempts_total', 'counter',
            'Delivery attempts of alert notifications (tests included), by channel.',
            (SELECT jsonb_agg(jsonb_build_object('labels', jsonb_build_object('channel', c.name, 'kind', c.kind),
                                                 'value', c.attempts_total) ORDER BY c.name)
               FROM crm_dashboard.alert_channel c)),
        crm_dashboard.prom_family('crm_dashboard_delivery_failures_total', 'counter',
            'Failed delivery attempts of alert notifications, by channel.',
            (SELECT jsonb_agg(jsonb_build_object('labels', jsonb_build_object('channel', c.name, 'kind', c.kind),
                                                 'value', c.failures_total) ORDER BY c.name)
               FROM crm_dashboard.alert_channel c)),
        crm_dashboard.prom_family('crm_dashboard_notifications_pending', 'gauge',
            'Alert notifications waiting to be delivered, by channel.',
            (SELECT jsonb_agg(jsonb_build_object('labels', jsonb_build_object('channel', c.name),
                                                 'value', (SELECT count(*) FROM crm_dashboard.alert_notification n
                                                            WHERE n.channel_id = c.id AND n.status = 'pending')) ORDER BY c.name)
               FROM crm_dashboard.alert_channel c)),
        crm_dashboard.http_metrics_text())
$$;
COMMENT ON FUNCTION crm_dashboard.metrics_text() IS
    'The metrics of GET /metrics in the Prometheus text format: runs, running and queued, seconds since the last success, freshness, open alerts, deliveries, HTTP requests and durations, event streams.';

REVOKE ALL ON FUNCTION crm_dashboard.http_metrics_text(), crm_dashboard.prom_label(text),
    crm_dashboard.prom_family(text, text, text, jsonb), crm_dashboard.metrics_text() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_dashboard.metrics_text() TO crm_dashboard_viewer;
