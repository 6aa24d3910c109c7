-- Register the CRM sync simulator as the sync command of all ten demo CRMs.
--
-- Run with psql -v simulator=/path/to/crm_sync_simulator (demo/load.sh does).  The simulator stands in
-- for the ingestion app's "python manage.py sync_<crm>_<model>" commands: it
-- upserts plausible rows into ingestion.<crm>_<model> at a realistic pace and
-- prints JSON-lines progress; a sheet without row ids (gsheet marketing_spend)
-- is replaced whole in one transaction instead.  Two CRMs get the faults their real APIs show:
-- Five9 hits a rate limit (a pause, then success), LeadConduit has records
-- that fail validation (the run ends partial).

INSERT INTO crm_dashboard.sync_command AS c (crm, model, argv, working_directory, environment, timeout)
SELECT s.name, NULL,
       ARRAY[:'simulator', '--crm', '{crm}', '--model', '{model}'],
       '/tmp',
       CASE s.name
           WHEN 'five9' THEN '{"CRM_SIM_FAULT": "rate-limit"}'
           WHEN 'leadconduit' THEN '{"CRM_SIM_FAULT": "partial"}'
           ELSE '{}'
       END::jsonb,
       interval '30 minutes'
FROM crm_dashboard.crm_source s
WHERE s.name IN ('genius', 'hubspot', 'callrail', 'arrivy', 'leadconduit',
                 'marketsharp', 'salespro', 'salesrabbit', 'gsheet', 'five9')
ON CONFLICT (crm, model) DO UPDATE
    SET argv = excluded.argv,
        working_directory = excluded.working_directory,
        environment = excluded.environment,
        timeout = excluded.timeout;
