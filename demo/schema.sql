-- Demo warehouse: schema "ingestion" shaped like a real CRM warehouse.
--
-- One table per CRM model, named <crm>_<model>, keyed by the source's own id,
-- with the sync_created_at / sync_updated_at stamps the ingestion app keeps.
-- Beside them live objects that are NOT CRM models and must never be
-- discovered as such: Django's own tables, a view with a CRM prefix, the
-- monthly partitions of callrail_call (the partitioned parent is the model).

DROP SCHEMA IF EXISTS ingestion CASCADE;
CREATE SCHEMA ingestion;
COMMENT ON SCHEMA ingestion IS 'Demo CRM warehouse: one table per CRM model, named <crm>_<model>.';

SET search_path = ingestion;

-- ---------------------------------------------------------------- genius
-- Genius CRM is a MySQL database read directly: integer ids, updated_at stamps.

CREATE TABLE genius_division (
    id              integer PRIMARY KEY,
    label           text NOT NULL,
    region          text,
    is_active       boolean NOT NULL DEFAULT true,
    updated_at      timestamptz NOT NULL,
    sync_created_at timestamptz NOT NULL DEFAULT now(),
    sync_updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE genius_appointment_type (
    id              integer PRIMARY KEY,
    label           text NOT NULL,
    default_duration integer NOT NULL,
    is_active       boolean NOT NULL DEFAULT true,
    sync_created_at timestamptz NOT NULL DEFAULT now(),
    sync_updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE genius_userdata (
    id              integer PRIMARY KEY,
    first_name      text,
    last_name       text,
    email           text,
    phone           text,
    division_id     integer,
    title           text,
    is_active       boolean NOT NULL DEFAULT true,
    hire_date       date,
    updated_at      timestamptz,
    sync_created_at timestamptz NOT NULL DEFAULT now(),
    sync_updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE genius_prospect (
    id              bigint PRIMARY KEY,
    first_name      text,
    last_name       text,
    address1        text,
    city            text,
    state           char(2),
    zip             text,
    phone1          text,
    email           text,
    division_id     integer,
    source          text,
    notes           text,
    add_date        timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    sync_created_at timestamptz NOT NULL DEFAULT now(),
    sync_updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX genius_prospect_updated_at ON genius_prospect (updated_at);
CREATE INDEX genius_prospect_division ON genius_prospect (division_id);

CREATE TABLE genius_lead (
    lead_id         bigint PRIMARY KEY,
    prospect_id     bigint NOT NULL,
    division_id     integer,
    source          text,
    status          text,
    add_date        timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    sync_created_at timestamptz NOT NULL DEFAULT now(),
    sync_updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX genius_lead_updated_at ON genius_lead (updated_at);
CREATE INDEX genius_lead_prospect ON genius_lead (prospect_id);

CREATE TABLE genius_appointment (
    id                      bigint PRIMARY KEY,
    prospect_id             bigint NOT NULL,
    user_id                 integer,
    type_id                 integer,
    date                    date NOT NULL,
    time                    time,
    duration                integer,
    city                    text,
    state                   char(2),
    zip                     text,
    is_complete             boolean NOT NULL DEFAULT false,
    complete_outcome_id     integer,
    hubspot_appointment_id  text,
    updated_at              timestamptz NOT NULL,
    sync_created_at         timestamptz NOT NULL DEFAULT now(),
    sync_updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX genius_appointment_updated_at ON genius_appointment (updated_at);
CREATE INDEX genius_appointment_prospect ON genius_appointment (prospect_id);
CREATE INDEX genius_appointment_date ON genius_appointment (date);

CREATE TABLE genius_quote (
    id              bigint PRIMARY KEY,
    prospect_id     bigint NOT NULL,
    appointment_id  bigint,
    amount          numeric(12, 2),
    status_id       integer,
    expire_date     date,
    updated_at      timestamptz NOT NULL,
    sync_created_at timestamptz NOT NULL DEFAULT now(),
    sync_updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX genius_quote_updated_at ON genius_quote (updated_at);

CREATE TABLE genius_job (
    id              bigint PRIMARY KEY,
    prospect_id     bigint NOT NULL,
    quote_id        bigint,
    job_number      text,
    contract_amount numeric(12, 2),
    status          text,
    sold_date       date,
    install_date    date,
    updated_at      timestamptz NOT NULL,
    sync_created_at timestamptz NOT NULL DEFAULT now(),
    sync_updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX genius_job_updated_at ON genius_job (updated_at);

-- ---------------------------------------------------------------- hubspot
-- HubSpot REST v3: ids are numeric strings; lastmodifieddate drives incremental syncs.

CREATE TABLE hubspot_division (
    id                  text PRIMARY KEY,
    name                text NOT NULL,
    hs_lastmodifieddate timestamptz,
    sync_created_at     timestamptz NOT NULL DEFAULT now(),
    sync_updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE hubspot_contact (
    id               text PRIMARY KEY,
    email            text,
    firstname        text,
    lastname         text,
    phone            text,
    city             text,
    state            text,
    zip              text,
    division         text,
    hubspot_owner_id text,
    lifecyclestage   text,
    createdate       timestamptz NOT NULL,
    lastmodifieddate timestamptz NOT NULL,
    archived         boolean NOT NULL DEFAULT false,
    sync_created_at  timestamptz NOT NULL DEFAULT now(),
    sync_updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hubspot_contact_lastmodifieddate ON hubspot_contact (lastmodifieddate);
CREATE INDEX hubspot_contact_email ON hubspot_contact (lower(email));

CREATE TABLE hubspot_deal (
    id                  text PRIMARY KEY,
    dealname            text,
    amount              numeric(12, 2),
    dealstage           text,
    pipeline            text,
    closedate           timestamptz,
    hubspot_owner_id    text,
    createdate          timestamptz NOT NULL,
    hs_lastmodifieddate timestamptz NOT NULL,
    sync_created_at     timestamptz NOT NULL DEFAULT now(),
    sync_updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hubspot_deal_lastmodified ON hubspot_deal (hs_lastmodifieddate);

CREATE TABLE hubspot_appointment (
    id                    text PRIMARY KEY,
    hs_appointment_name   text,
    hs_appointment_start  timestamptz,
    hs_appointment_end    timestamptz,
    appointment_status    text,
    genius_appointment_id bigint,
    hs_lastmodifieddate   timestamptz NOT NULL,
    sync_created_at       timestamptz NOT NULL DEFAULT now(),
    sync_updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hubspot_appointment_lastmodified ON hubspot_appointment (hs_lastmodifieddate);

-- A view with a CRM prefix: a convenience for analysts, not a model.
CREATE VIEW hubspot_contact_emails AS
    SELECT id, lower(email) AS email FROM hubspot_contact WHERE email IS NOT NULL AND NOT archived;

-- ---------------------------------------------------------------- callrail
-- CallRail REST v3: prefixed text ids.  Calls are partitioned by month; the
-- partitions share the CRM prefix but only the parent is a model.

CREATE TABLE callrail_account (
    id              text PRIMARY KEY,
    name            text NOT NULL,
    outbound_recording_enabled boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL,
    sync_created_at timestamptz NOT NULL DEFAULT now(),
    sync_updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE callrail_company (
    id              text PRIMARY KEY,
    account_id      text NOT NULL,
    name            text NOT NULL,
    status          text NOT NULL,
    time_zone       text,
    created_at      timestamptz NOT NULL,
    sync_created_at timestamptz NOT NULL DEFAULT now(),
    sync_updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE callrail_tracker (
    id              text PRIMARY KEY,
    company_id      text NOT NULL,
    name            text NOT NULL,
    type            text NOT NULL,
    status          text NOT NULL,
    tracking_number text,
    source          jsonb,
    created_at      timestamptz NOT NULL,
    sync_created_at timestamptz NOT NULL DEFAULT now(),
    sync_updated_at timestamptz NOT NULL DEFAULT now()
);

-- The partition key must be part of the primary key, so calls are keyed by
-- (id, start_time); the id alone is still unique at the source.
CREATE TABLE callrail_call (
    id                    text NOT NULL,
    answered              boolean,
    direction             text,
    duration              integer,
    start_time            timestamptz NOT NULL,
    customer_name         text,
    customer_phone_number text,
    customer_city         text,
    customer_state        text,
    tracking_phone_number text,
    company_id            text,
    tracker_id            text,
    lead_status           text,
    tags                  jsonb,
    value                 numeric(10, 2),
    source                text,
    sync_created_at       timestamptz NOT NULL DEFAULT now(),
    sync_updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, start_time)
) PARTITION BY RANGE (start_time);

DO $partitions$
DECLARE
    m date;
BEGIN
    FOR m IN SELECT generate_series(date_trunc('month', now() - interval '17 months'),
                                    date_trunc('month', now() + interval '1 month'),
                                    interval '1 month')::date
    LOOP
        EXECUTE format('CREATE TABLE ingestion.%I PARTITION OF ingestion.callrail_call'
                       ' FOR VALUES FROM (%L) TO (%L)',
                       'callrail_call_' || to_char(m, 'YYYY_MM'), m, (m + interval '1 month')::date);
    END LOOP;
END
$partitions$;
CREATE TABLE callrail_call_default PARTITION OF callrail_call DEFAULT;
CREATE INDEX callrail_call_sync_updated_at ON callrail_call (sync_updated_at);
CREATE INDEX callrail_call_company ON callrail_call (company_id);

-- ---------------------------------------------------------------- arrivy

CREATE TABLE arrivy_group (
    id              bigint PRIMARY KEY,
    name            text NOT NULL,
    description     text,
    created         timestamptz NOT NULL,
    updated         timestamptz NOT NULL,
    sync_created_at timestamptz NOT NULL DEFAULT now(),
    sync_updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE arrivy_entity (
    id              bigint PRIMARY KEY,
    name            text NOT NULL,
    email           text,
    phone           text,
    type            text,
    group_id        bigint,
    is_active       boolean NOT NULL DEFAULT true,
    created         timestamptz NOT NULL,
    updated         timestamptz NOT NULL,
    sync_created_at timestamptz NOT NULL DEFAULT now(),
    sync_updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE arrivy_task (
    id                  bigint PRIMARY KEY,
    title               text,
    start_datetime      timestamptz,
    end_datetime        timestamptz,
    status              text NOT NULL,
    entity_ids          jsonb,
    customer_first_name text,
    customer_last_name  text,
    customer_email      text,
    customer_city       text,
    external_id         text,
    group_id            bigint,
    created             timestamptz NOT NULL,
    updated             timestamptz NOT NULL,
    sync_created_at     timestamptz NOT NULL DEFAULT now(),
    sync_updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX arrivy_task_updated ON arrivy_task (updated);

-- ---------------------------------------------------------------- leadconduit
-- LeadConduit's events log: 24-hex-character event ids, the raw event kept as jsonb.

CREATE TABLE leadconduit_lead (
    id              text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{24}$'),
    outcome         text NOT NULL,
    reason          text,
    flow_name       text,
    source_name     text,
    first_name      text,
    last_name       text,
    email           text,
    phone_1         text,
    city            text,
    state           text,
    postal_code     text,
    submitted_at    timestamptz NOT NULL,
    raw             jsonb,
    sync_created_at timestamptz NOT NULL DEFAULT now(),
    sync_updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX leadconduit_lead_submitted_at ON leadconduit_lead (submitted_at);

-- ---------------------------------------------------------------- marketsharp
-- MarketSharp OData: uuid keys, lastUpdate drives incremental syncs.

CREATE TABLE marketsharp_contact (
    id              uuid PRIMARY KEY,
    first_name      text,
    last_name       text,
    email1          text,
    phone1          text,
    city            text,
    state           text,
    source          text,
    is_active       boolean NOT NULL DEFAULT true,
    creation_date   timestamptz NOT NULL,
    last_update     timestamptz NOT NULL,
    sync_created_at timestamptz NOT NULL DEFAULT now(),
    sync_updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX marketsharp_contact_last_update ON marketsharp_contact (last_update);

CREATE TABLE marketsharp_appointment (
    id              uuid PRIMARY KEY,
    contact_id      uuid NOT NULL,
    appointment_date timestamptz,
    result          text,
    sales_rep       text,
    last_update     timestamptz NOT NULL,
    sync_created_at timestamptz NOT NULL DEFAULT now(),
    sync_updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX marketsharp_appointment_last_update ON marketsharp_appointment (last_update);

CREATE TABLE marketsharp_job (
    id              uuid PRIMARY KEY,
    contact_id      uuid NOT NULL,
    number          text,
    name            text,
    type            text,
    status          text,
    sale_date       date,
    contract_amount numeric(12, 2),
    last_update     timestamptz NOT NULL,
    sync_created_at timestamptz NOT NULL DEFAULT now(),
    sync_updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX marketsharp_job_last_update ON marketsharp_job (last_update);

CREATE TABLE marketsharp_inquiry (
    id              uuid PRIMARY KEY,
    contact_id      uuid NOT NULL,
    inquiry_date    timestamptz NOT NULL,
    source          text,
    product_interest text,
    last_update     timestamptz NOT NULL,
    sync_created_at timestamptz NOT NULL DEFAULT now(),
    sync_updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX marketsharp_inquiry_last_update ON marketsharp_inquiry (last_update);

-- ---------------------------------------------------------------- salespro
-- SalesPro bulk export: 10-character object ids.

CREATE TABLE salespro_customer (
    id              text PRIMARY KEY,
    first_name      text,
    last_name       text,
    email           text,
    phone           text,
    address         text,
    city            text,
    state           text,
    zip             text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    sync_created_at timestamptz NOT NULL DEFAULT now(),
    sync_updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX salespro_customer_updated_at ON salespro_customer (updated_at);

CREATE TABLE salespro_estimate (
    id                   text PRIMARY KEY,
    customer_id          text NOT NULL,
    office_name          text,
    sales_rep_first_name text,
    sale_amount          numeric(12, 2),
    is_sale              boolean NOT NULL DEFAULT false,
    job_type             text,
    finance_amount       numeric(12, 2),
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    sync_created_at      timestamptz NOT NULL DEFAULT now(),
    sync_updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX salespro_estimate_updated_at ON salespro_estimate (updated_at);

CREATE TABLE salespro_payment (
    id              text PRIMARY KEY,
    estimate_id     text NOT NULL,
    amount          numeric(12, 2) NOT NULL,
    method          text,
    paid_at         timestamptz,
    updated_at      timestamptz NOT NULL,
    sync_created_at timestamptz NOT NULL DEFAULT now(),
    sync_updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE salespro_leadresult (
    id              text PRIMARY KEY,
    estimate_id     text NOT NULL,
    lead_results    jsonb NOT NULL DEFAULT '[]',
    updated_at      timestamptz NOT NULL,
    sync_created_at timestamptz NOT NULL DEFAULT now(),
    sync_updated_at timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------- salesrabbit

CREATE TABLE salesrabbit_user (
    id              bigint PRIMARY KEY,
    first_name      text,
    last_name       text,
    email           text,
    phone           text,
    role            text,
    team            text,
    active          boolean NOT NULL DEFAULT true,
    date_created    timestamptz NOT NULL,
    date_modified   timestamptz NOT NULL,
    sync_created_at timestamptz NOT NULL DEFAULT now(),
    sync_updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE salesrabbit_lead (
    id              bigint PRIMARY KEY,
    first_name      text,
    last_name       text,
    email           text,
    phone_primary   text,
    street1         text,
    city            text,
    state           text,
    zip             text,
    latitude        double precision,
    longitude       double precision,
    status          text,
    status_modified timestamptz,
    user_id         bigint,
    campaign_id     bigint,
    date_created    timestamptz NOT NULL,
    date_modified   timestamptz NOT NULL,
    deleted_at      timestamptz,
    custom_fields   jsonb,
    sync_created_at timestamptz NOT NULL DEFAULT now(),
    sync_updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX salesrabbit_lead_date_modified ON salesrabbit_lead (date_modified);

-- ---------------------------------------------------------------- gsheet
-- Google Sheets read as tables.  The spend sheet has no id at all: rows are
-- only known by their position, so the table has no primary key.

CREATE TABLE gsheet_marketing_lead (
    id              bigint PRIMARY KEY,
    first_name      text,
    last_name       text,
    phone           text,
    email           text,
    utm_source      text,
    utm_campaign    text,
    division        text,
    created_at      timestamptz,
    sync_created_at timestamptz NOT NULL DEFAULT now(),
    sync_updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE gsheet_marketing_spend (
    spend_date       date NOT NULL,
    cost             numeric(12, 2),
    division         text,
    channel          text,
    campaign         text,
    campaign_type    text,
    sheet_row_number integer NOT NULL,
    sync_created_at  timestamptz NOT NULL DEFAULT now(),
    sync_updated_at  timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------- five9

CREATE TABLE five9_contact (
    number1               text PRIMARY KEY,
    first_name            text,
    last_name             text,
    list_name             text,
    last_disposition      text,
    last_disposition_time timestamptz,
    sync_created_at       timestamptz NOT NULL DEFAULT now(),
    sync_updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX five9_contact_disposition_time ON five9_contact (last_disposition_time);

-- ---------------------------------------------------------------- not CRM models
-- The ingestion app is a Django project: its bookkeeping tables sit here too.

CREATE TABLE django_migrations (
    id      bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    app     varchar(255) NOT NULL,
    name    varchar(255) NOT NULL,
    applied timestamptz NOT NULL
);

CREATE TABLE auth_user (
    id           integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    password     varchar(128) NOT NULL,
    last_login   timestamptz,
    is_superuser boolean NOT NULL,
    username     varchar(150) NOT NULL UNIQUE,
    first_name   varchar(150) NOT NULL,
    last_name    varchar(150) NOT NULL,
    email        varchar(254) NOT NULL,
    is_staff     boolean NOT NULL,
    is_active    boolean NOT NULL,
    date_joined  timestamptz NOT NULL
);

RESET search_path;
