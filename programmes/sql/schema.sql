-- programmes.*: cohorts, evidence, changes, needs and costs, one set of rows per evaluated snapshot; triage
-- decisions and clerical referrals are append-only (the latest decision per programme and household is in force).
create schema if not exists programmes;

create table if not exists programmes.evaluation (
    snapshot_id varchar not null,
    as_of date not null,
    programme varchar not null,
    programme_title varchar,
    rules_sha256 varchar not null,
    households_evaluated bigint,
    qualifying bigint,
    in_cohort bigint,
    evaluated_at timestamp not null default current_timestamp
);

create table if not exists programmes.cohort (
    snapshot_id varchar not null,
    as_of date not null,
    programme varchar not null,
    household_id bigint not null,
    ward_code varchar,
    ward_name varchar,
    criteria_met varchar[],
    criteria_count integer,
    rule_met varchar,
    evidence_records integer,
    doubtful_evidence_records integer,
    first_qualified date,
    triage_decision varchar,
    triage_reason varchar,
    in_cohort boolean
);

create table if not exists programmes.cohort_evidence (
    snapshot_id varchar not null,
    programme varchar not null,
    household_id bigint not null,
    criterion varchar not null,
    condition_index integer not null,
    person_id bigint not null,
    source varchar not null,
    record_id varchar not null,
    event_type varchar not null,
    event_date date,
    dated_by_extract boolean,
    value double,
    match_probability double,
    doubtful_link boolean
);

create table if not exists programmes.cohort_change (
    snapshot_id varchar not null,
    previous_snapshot_id varchar,
    programme varchar not null,
    household_id bigint not null,
    change varchar not null,          -- joined | left
    reason varchar not null
);

create table if not exists programmes.triage_decision (
    decision_id varchar primary key,
    programme varchar not null,
    household_id bigint not null,
    decision varchar not null,        -- accepted | removed | clerical_review | reopened
    reason_code varchar,
    note varchar,                     -- free text for the triage panel; never published or exported
    actor varchar not null,
    snapshot_id varchar,
    decided_at timestamp not null default current_timestamp
);

create table if not exists programmes.clerical_referral (
    decision_id varchar not null,
    programme varchar not null,
    household_id bigint not null,
    person_id bigint,
    source varchar not null,
    record_id varchar not null,
    match_probability double,
    referred_at timestamp not null default current_timestamp
);

create table if not exists programmes.household_need (
    snapshot_id varchar not null,
    as_of date not null,
    household_id bigint not null,
    ward_code varchar,
    ward_name varchar,
    member_count bigint,
    agencies varchar[],
    agency_count integer,
    known_to_3_plus_agencies boolean,
    need_types varchar[],
    need_count integer,
    events_12m integer,
    interventions_current integer,
    interventions_12m integer,
    recorded_cost double,
    unpriced_items integer,
    cost_price_year integer
);

create table if not exists programmes.need_by_ward (
    snapshot_id varchar not null,
    ward_code varchar,
    ward_name varchar,
    need_type varchar not null,
    households bigint not null
);

create table if not exists programmes.household_cost (
    snapshot_id varchar not null,
    as_of date not null,
    household_id bigint not null,
    ward_code varchar,
    ward_name varchar,
    agency varchar,
    cost_key varchar,
    cost_title varchar,
    unit varchar,
    units double,
    unit_cost double,
    price_year integer,
    cost double,
    target_price_year integer,
    cost_in_target_year double,
    uplifted boolean,
    placeholder boolean,
    cost_source varchar
);

create table if not exists programmes.pseudo_cohort (
    snapshot_id varchar not null,
    programme varchar not null,
    household_key varchar not null,
    ward_code varchar,
    ward_name varchar,
    criteria_met varchar[],
    criteria_count integer,
    first_qualified_month date,
    triage_decision varchar,
    in_cohort boolean
);

create table if not exists programmes.pseudo_household_need (
    snapshot_id varchar not null,
    household_key varchar not null,
    ward_code varchar,
    ward_name varchar,
    member_count bigint,
    agencies varchar[],
    agency_count integer,
    known_to_3_plus_agencies boolean,
    need_types varchar[],
    need_count integer,
    events_12m integer,
    interventions_current integer,
    interventions_12m integer,
    recorded_cost double,
    unpriced_items integer,
    cost_price_year integer
);
