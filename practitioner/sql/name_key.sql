-- name_key rows for the records in {input}: one row per name a person is known by (every source's matching
-- form), with phonetic keys for candidate search (typos that keep the sound, transliterations, doubled letters).
-- The paired keys (surname+forename, surname+birth year, forename+birth year) are single columns because
-- DuckDB's index look-up takes one column: each search asks a few of them, so a typo in either name is
-- still found while a common name never means reading thousands of rows.
with names as (
    select
        person_id,
        split_part(first_name_std, ' ', 1) as first_std,
        coalesce(first_name_formal, split_part(first_name_std, ' ', 1)) as formal,
        replace(last_name_std, ' ', '') as last_std,
        date_of_birth,
        postcode
    from {input}
),
keyed as (
    select distinct
        person_id,
        first_std,
        formal,
        last_std,
        {phonetic_first} as first_key,
        {phonetic_last} as last_key,
        date_of_birth,
        postcode
    from names
    where last_std is not null or first_std is not null
),
final as (
    select
        *,
        last_key || '|' || first_key as last_first_key,
        last_key || '|' || cast(year(date_of_birth) as varchar) as last_year_key,
        first_key || '|' || cast(year(date_of_birth) as varchar) as first_year_key
    from keyed
)
select * from final
