-- The practitioner index, loaded into memory from one published snapshot's Parquet ({dir}).
-- Ids are text here, so a provisional person ("R12") from a real-time referral sits beside nightly ids.

create table record as
with records as (
    select * from read_parquet('{dir}/golden/person_record.parquet')
),
final as (
    select
        cast(person_id as varchar) as person_id,
        source,
        record_id,
        record_role,
        first_name_std,
        first_name_formal,
        middle_names_std,
        last_name_std,
        sex,
        date_of_birth,
        postcode,
        uprn,
        nhs_number,
        ni_number,
        upn,
        pnc_id,
        crn,
        phone,
        email,
        address_std,
        address_tokens,
        tenancy_ref,
        local_id,
        identifiers,
        confidential
    from records
)
select * from final;

create table person as
with persons as (
    select * from read_parquet('{dir}/golden/person.parquet')
),
shielded as (
    select person_id, bool_or(confidential) as shielded from record group by person_id
),
final as (
    select
        cast(persons.person_id as varchar) as person_id,
        persons.first_name,
        persons.middle_names,
        persons.last_name,
        persons.date_of_birth,
        persons.sex,
        persons.address,
        persons.postcode,
        cast(persons.household_id as varchar) as household_id,
        persons.household_role,
        persons.agency_count,
        coalesce(shielded.shielded, false) as shielded,
        false as provisional
    from persons
    left join shielded on shielded.person_id = cast(persons.person_id as varchar)
)
select * from final;

create table involvement as
select
    cast(person_id as varchar) as person_id,
    agency,
    service,
    worker_name,
    worker_role,
    worker_phone,
    worker_email,
    start_date,
    end_date,
    is_open,
    source,
    record_id
from read_parquet('{dir}/golden/involvement.parquet');
