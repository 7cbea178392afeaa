-- familylink warehouse: schemas and the tables every stage shares.
-- Staging tables are created from sources/canonical.py (one definition of the canonical schema);
-- graph, golden and report tables are created by the stages that build them.

create schema if not exists raw;
create schema if not exists staging;
create schema if not exists history;
create schema if not exists quarantine;
create schema if not exists linkage;
create schema if not exists graph;
create schema if not exists golden;
create schema if not exists audit;

-- Rows exactly as received: one row per data row of an extract file, never edited
-- (erasure deletes, it never rewrites).
create table if not exists raw.row (
    source varchar not null,
    file_sha256 varchar not null,
    row_number bigint not null,
    record_key varchar,
    payload json not null,
    primary key (file_sha256, row_number)
);

-- Rows that failed validation, with every reason.
create table if not exists quarantine.row (
    run_id varchar not null,
    source varchar not null,
    file_name varchar not null,
    file_sha256 varchar not null,
    row_number bigint not null,
    record_id varchar,
    reasons varchar[] not null,
    payload json,                        -- the row as received
    quarantined_at timestamp not null default current_timestamp
);

create table if not exists audit.run (
    run_id varchar primary key,
    flow varchar not null,
    started_at timestamp not null,
    finished_at timestamp,
    status varchar not null,            -- running | completed | failed
    parameters json,
    failed_stage varchar,
    error varchar                        -- ids and reasons only, never personal data
);

-- One row per extract file seen by a run.
create table if not exists audit.file_manifest (
    run_id varchar not null,
    source varchar not null,
    file_name varchar not null,
    file_sha256 varchar,
    file_bytes bigint,
    extract_date date,
    rows_read bigint,
    rows_staged bigint,
    rows_quarantined bigint,
    status varchar not null,            -- loaded | unchanged | rejected | superseded
    message varchar,
    data_docs varchar,
    recorded_at timestamp not null default current_timestamp
);

-- Which extract is the current one for each source (its staged rows are in staging.*).
create table if not exists audit.current_extract (
    source varchar primary key,
    file_name varchar not null,
    file_sha256 varchar not null,
    extract_date date,
    rows_read bigint not null,
    loaded_run_id varchar not null,
    loaded_at timestamp not null,
    ingest_key varchar                  -- sources/_load.ingest_key: file + contract + settings it was loaded under
);
alter table audit.current_extract add column if not exists ingest_key varchar;

-- Per-run data-quality results (one row per expectation per source).
create table if not exists audit.expectation_result (
    run_id varchar not null,
    source varchar not null,
    file_sha256 varchar not null,
    expectation varchar not null,
    column_name varchar,
    severity varchar not null,
    unexpected_count bigint,
    unexpected_percent double,
    success boolean not null
);

-- Every access to personal data (who, what, why), and every erasure/rectification.
create table if not exists audit.access_log (
    accessed_at timestamp not null default current_timestamp,
    actor varchar not null,
    action varchar not null,
    object varchar not null,
    purpose varchar,
    detail json
);

-- The key of one distinct source address, shared by address matching and the graph.
create or replace macro address_key(address_std, postcode, uprn) as
    md5(coalesce(address_std, '') || '|' || coalesce(postcode, '') || '|' || coalesce(cast(uprn as varchar), ''));

-- Clerical review decisions on pairs of source records (`familylink review`, or loaded from a file).
-- 'match' is a must-link and 'non_match' a cannot-link for the next run's clustering; 'unsure' only
-- counts towards the review sample. The latest decision on a pair is the one in force; earlier ones
-- stay as the record of who decided what, when. Pairs are stored with the smaller key on the left.
create table if not exists linkage.clerical_decision (
    source_l varchar not null,
    record_id_l varchar not null,
    source_r varchar not null,
    record_id_r varchar not null,
    decision varchar not null check (decision in ('match', 'non_match', 'unsure')),
    stratum varchar,                     -- how the pair came to review: borderline | random | manual
    match_probability double,            -- the model's probability when the pair was reviewed
    model_version varchar,
    reviewer varchar not null,
    decided_at timestamp not null default current_timestamp
);
-- Added in issue 14 (kept as ALTERs so warehouses created earlier gain them): a reviewer's free-text note (never
-- logged or published), the decision's own id, when it was undone (an undone decision is no longer in force but
-- stays as the record), and the programme triage referral it answers (programmes.clerical_referral.decision_id).
alter table linkage.clerical_decision add column if not exists note varchar;
alter table linkage.clerical_decision add column if not exists decision_id varchar;
alter table linkage.clerical_decision add column if not exists undone_at timestamp;
alter table linkage.clerical_decision add column if not exists referral_id varchar;

-- Records whose cluster the over-merge guard split or flagged in a run, and why
-- (conflicting NHS numbers, a cannot-link decision, dates of birth too far apart for one person).
create table if not exists linkage.overmerge_flag (
    run_id varchar not null,
    source varchar not null,
    record_id varchar not null,
    person_id bigint,                    -- the person the record belongs to after the guard
    cluster_key varchar not null,        -- the cluster as first formed (same key = same original cluster)
    reason varchar not null,             -- nhs_number_conflict | cannot_link | date_of_birth_conflict
    action varchar not null check (action in ('split', 'flagged')),
    flagged_at timestamp not null default current_timestamp
);

-- Records erased on request: later extracts that still carry them are not staged again (the rows are
-- counted as quarantined, "erased on request", and their content is not kept). Ids only. The columns
-- are not named source/record_id so that erasure, which clears every table holding a record, keeps this.
create table if not exists audit.erased_record (
    erased_source varchar not null,
    erased_record_id varchar not null,
    erased_at timestamp not null default current_timestamp,
    reference varchar,
    primary key (erased_source, erased_record_id)
);
