-- graph.person_address: dated residence evidence, one row per source record with a matched UPRN, or, when
-- no gazetteer property matched, with a normalised address and postcode (its address_key stands for the home).
-- With no gazetteer at all (docs/adr/0005-households.md) a source's own UPRN is the match, and an address given
-- without a postcode is a home by its text alone when it names a house number.
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
gazetteer as (
    select count(*) as properties from graph.address
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
    cross join gazetteer
    where (matches.uprn is not null
           or (records.address_std is not null and records.postcode is not null)
           -- no postcode and no gazetteer to say the text names one property: a house number and a word, never
           -- a bare town or street (with a gazetteer such an address it could not match stays unplaced, ADR 3)
           or (gazetteer.properties = 0 and records.postcode is null
               and regexp_matches(records.address_std, '(^| )[0-9]+[A-Z]?( |$)')
               and regexp_matches(records.address_std, '[A-Z]{2}')))
        and not coalesce(records.no_fixed_abode, false)
),
agreement as (
    -- How often each source's address is corroborated: of its records for persons whom another source also
    -- records an address for, the share whose home (UPRN, else normalised address) another source gives too.
    -- Sources lag differently (a GP list keeps a family's old address for months; a tenancy or a claim follows
    -- the move), and their "from" dates mean different things (a registration, a tenancy start), so freshness
    -- is compared within a source, and between sources the better-corroborated one wins (docs/adr/0005).
    -- (Counted with joins on grouped counts: a windowed count(distinct) took most of this table's time.)
    select r.source, avg((h.sources > 1)::int) as agreement
    from (select *, coalesce(cast(uprn as varchar), address_key) as home from renamed) as r
    join (select person_id, home, count(distinct source) as sources
          from (select person_id, source, coalesce(cast(uprn as varchar), address_key) as home from renamed)
          group by all) as h using (person_id, home)
    join (select person_id from renamed group by person_id having count(distinct source) > 1) as several
        using (person_id)
    group by r.source
),
ranked as (
    -- The current address: an open-ended residence first; then the better-corroborated source; then the
    -- freshest evidence within it (the latest start, the latest extract); ties go to the most trusted source.
    select
        renamed.*,
        row_number() over (
            partition by person_id
            order by (address_to is null) desc, coalesce(agreement.agreement, 0) desc,
                     address_from desc nulls last, extract_date desc nulls last,
                     coalesce(t.trust_rank, 99), source, record_id
        ) = 1 as is_current
    from renamed
    left join agreement using (source)
    left join linkage.source_trust as t using (source)
)
select * from ranked;
