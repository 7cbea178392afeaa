-- {snapshot}.person_record: every staged source record in its matching form, with its person — what the
-- practitioner service needs to search by name and to link a new referral in real time with the approved
-- model, without reading the working warehouse. `confidential` is the source's shielding flag.
create table {snapshot}.person_record as
with records as (
    select * from staging.person_record
),
links as (
    select source, record_id, person_id from graph.record_link
),
final as (
    select
        links.person_id,
        records.source,
        records.record_id,
        records.record_role,
        records.first_name_std,
        records.first_name_formal,
        records.middle_names_std,
        records.last_name_std,
        records.aliases,
        records.sex,
        records.date_of_birth,
        records.postcode,
        records.uprn,
        records.nhs_number,
        records.ni_number,
        records.upn,
        records.pnc_id,
        records.crn,
        records.phone,
        coalesce(records.confidential, false) as confidential
    from records
    inner join links using (source, record_id)
)
select * from final;
