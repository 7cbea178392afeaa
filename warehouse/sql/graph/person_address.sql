-- graph.person_address: dated residence evidence, one row per source record with a matched UPRN, or, when
-- no gazetteer property matched, with a normalised address and postcode (its address_key stands for the home).
create or replace table graph.person_address as
with records as (
    select * from staging.person_record where record_role is not null
),
matches as (
    select * from linkage.address_match
),
links as (
    select source, record_id, person_id from graph.record_link
),
renamed as (
    select
        links.person_id,
        matches.uprn,
        matches.address_key,
        records.source,
        records.record_id,
        records.address_from,
        records.address_to,
        records.extract_date,
        matches.match_method,
        matches.match_score
    from records
    inner join links using (source, record_id)
    inner join matches
        on matches.address_key = address_key(records.address_std, records.postcode, records.uprn)
    where (matches.uprn is not null or (records.address_std is not null and records.postcode is not null))
        and not coalesce(records.no_fixed_abode, false)
),
ranked as (
    -- The current address is the freshest evidence: an open-ended residence, the latest start, the latest
    -- extract; ties go to the most trusted source (lowest rank).
    select
        renamed.*,
        row_number() over (
            partition by person_id
            order by (address_to is null) desc, address_from desc nulls last, extract_date desc nulls last,
                     coalesce(t.trust_rank, 99), source, record_id
        ) = 1 as is_current
    from renamed
    left join linkage.source_trust as t using (source)
)
select * from ranked;
