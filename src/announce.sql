-- Announcing run changes (src/announce.c): every change of a run is sent
-- with NOTIFY crm_dashboard_sync and, when the library is preloaded,
-- published at commit into the shared-memory ring that the HTTP workers
-- stream as Server-Sent Events.

CREATE FUNCTION crm_dashboard.announce_sync_change() RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'crm_dashboard_announce_sync_change';
COMMENT ON FUNCTION crm_dashboard.announce_sync_change() IS
    'Private: announce a changed run (NOTIFY crm_dashboard_sync and the shared-memory ring).';

CREATE FUNCTION crm_dashboard.recent_announcements(after bigint DEFAULT 0)
RETURNS TABLE (seq bigint, payload json)
LANGUAGE c VOLATILE STRICT
AS 'MODULE_PATHNAME', 'crm_dashboard_recent_announcements';
COMMENT ON FUNCTION crm_dashboard.recent_announcements(bigint) IS
    'Private: run-change events still in the shared-memory ring after sequence number "after" (empty without preloading).';

CREATE TRIGGER sync_history_announce
    AFTER INSERT OR UPDATE ON crm_dashboard.sync_history
    FOR EACH ROW EXECUTE FUNCTION crm_dashboard.announce_sync_change();

REVOKE ALL ON FUNCTION crm_dashboard.announce_sync_change(),
    crm_dashboard.recent_announcements(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_dashboard.recent_announcements(bigint) TO crm_dashboard_viewer;
