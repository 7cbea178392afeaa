-- {snapshot}.pseudo_*: the pseudonymised tables for analysis without direct identifiers.
-- Keyed-hash ids come in through _pseudonym (id kind, id, pseudonym), computed with the secret key outside
-- the database so the key is never stored. No names, dates of birth, addresses, identifiers or workers.
create table {snapshot}.pseudo_person as
with persons as (
    select * from {snapshot}.person
),
keys as (
    select id, pseudonym from _pseudonym where kind = 'person'
),
households as (
    select id, pseudonym from _pseudonym where kind = 'household'
),
uprns as (
    select id, pseudonym from _pseudonym where kind = 'uprn'
),
final as (
    select
        keys.pseudonym as person_key,
        households.pseudonym as household_key,
        persons.sex,
        case
            when persons.age is null then 'unknown'
            when persons.age < 5 then '00-04'
            when persons.age < 11 then '05-10'
            when persons.age < 16 then '11-15'
            when persons.age < 18 then '16-17'
            when persons.age < 25 then '18-24'
            when persons.age < 35 then '25-34'
            when persons.age < 50 then '35-49'
            when persons.age < 65 then '50-64'
            else '65+'
        end as age_band,
        persons.household_role,
        persons.ward_code,
        persons.ward_name,
        uprns.pseudonym as uprn_hash,
        persons.agencies,
        persons.agency_count,
        persons.source_records
    from persons
    inner join keys on keys.id = persons.person_id
    left join households on households.id = persons.household_id
    left join uprns on uprns.id = persons.uprn
)
select * from final;

create table {snapshot}.pseudo_household as
with households as (
    select * from {snapshot}.household
),
keys as (
    select id, pseudonym from _pseudonym where kind = 'household'
),
uprns as (
    select id, pseudonym from _pseudonym where kind = 'uprn'
),
final as (
    select
        keys.pseudonym as household_key,
        uprns.pseudonym as uprn_hash,
        households.ward_code,
        households.ward_name,
        households.is_communal_establishment,
        households.member_count,
        households.children_0_25,
        households.agencies,
        households.agency_count
    from households
    inner join keys on keys.id = households.household_id
    left join uprns on uprns.id = households.uprn
)
select * from final;

create table {snapshot}.pseudo_involvement as
with involvements as (
    select * from {snapshot}.involvement
),
keys as (
    select id, pseudonym from _pseudonym where kind = 'person'
),
final as (
    -- one row per golden involvement (no distinct: two involvements in the same month are two rows)
    select
        keys.pseudonym as person_key,
        involvements.agency,
        involvements.service,
        cast(date_trunc('month', involvements.start_date) as date) as start_month,
        cast(date_trunc('month', involvements.end_date) as date) as end_month,
        involvements.is_open,
        involvements.source
    from involvements
    inner join keys on keys.id = involvements.person_id
)
select * from final;

create table {snapshot}.pseudo_relationship as
with relationships as (
    select * from {snapshot}.relationship
),
keys as (
    select id, pseudonym from _pseudonym where kind = 'person'
),
final as (
    select
        subject.pseudonym as person_key,
        related.pseudonym as related_person_key,
        relationships.relationship,
        relationships.evidence_records,
        relationships.stated_by
    from relationships
    inner join keys as subject on subject.id = relationships.person_id
    inner join keys as related on related.id = relationships.related_person_id
)
select * from final;
