-- name_key rows for the records in {input}: one row per name a person is known by (every source's matching
-- form), with phonetic keys for candidate search (typos that keep the sound, transliterations, doubled letters).
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
final as (
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
)
select * from final
