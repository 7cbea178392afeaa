-- _programme_event: every staged event with the person and household it belongs to in the snapshot being
-- evaluated. An event the source did not date counts at its extract date (dated_by_extract).
create or replace temp table _programme_event as
with events as (
    select * from staging.event
),
links as (
    select source, record_id, person_id, match_probability from {snapshot}.person_source_link
),
persons as (
    select person_id, household_id, age from {snapshot}.person where household_id is not null
),
records as (
    select source, record_id, extract_date from staging.person_record
),
final as (
    select
        persons.household_id,
        links.person_id,
        persons.age,
        events.source,
        events.record_id,
        events.event_type,
        coalesce(events.event_date, records.extract_date) as event_date,
        events.event_date is null as dated_by_extract,
        events.value,
        events.detail,
        links.match_probability
    from events
    inner join links using (source, record_id)
    inner join persons using (person_id)
    left join records using (source, record_id)
)
select * from final;
