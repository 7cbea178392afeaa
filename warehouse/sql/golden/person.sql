-- {snapshot}.person: one golden row per person_id. The attribute picks ({snapshot}._pick_*) are built
-- first from warehouse/survivorship.yaml; this joins them with the graph.
create table {snapshot}.person as
with persons as (
    select * from graph.person
),
current_address as (
    select person_id, uprn from graph.person_address where is_current
),
households as (
    select person_id, household_id, age, role from graph.household_member
),
addresses as (
    select uprn, address, postcode, ward_code, ward_name from graph.address
),
final as (
    select
        persons.person_id,
{pick_columns},
        households.age,
        current_address.uprn,
        addresses.address,
        addresses.postcode,
        addresses.ward_code,
        addresses.ward_name,
        households.household_id,
        households.role as household_role,
        persons.source_list as agencies,
        persons.sources as agency_count,
        persons.source_records
    from persons
    left join current_address using (person_id)
    left join addresses using (uprn)
    left join households using (person_id)
{pick_joins}
)
select * from final;
