-- {snapshot}.household: one row per household with its members and the agencies involved with any member.
create table {snapshot}.household as
with households as (
    select * from graph.household
),
members as (
    select
        m.household_id,
        list(struct_pack(person_id := m.person_id, role := m.role, age := m.age)
             order by m.age desc nulls last, m.person_id) as members,
        list(distinct a.source order by a.source) filter (where a.source is not null) as agencies
    from graph.household_member as m
    left join graph.record_link as a using (person_id)
    group by m.household_id
),
addresses as (
    select uprn, address, postcode from graph.address
),
final as (
    select
        households.household_id,
        households.uprn,
        addresses.address,
        addresses.postcode,
        households.ward_code,
        households.ward_name,
        households.is_communal_establishment,
        households.members as member_count,
        households.children_0_25,
        members.members,
        coalesce(members.agencies, []) as agencies,
        len(coalesce(members.agencies, [])) as agency_count
    from households
    left join members using (household_id)
    left join addresses using (uprn)
)
select * from final;
