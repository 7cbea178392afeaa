-- graph.household_member: persons who currently live at the same UPRN form one household; where no UPRN is
-- known (no gazetteer, or no match), at the same normalised address and postcode.
-- Residents of communal establishments (care homes, hostels, halls) are each a household of one,
-- so an establishment never becomes one giant household (docs/adr/0005-households.md).
create or replace table graph.household_member as
with current_address as (
    select person_id, uprn, address_key from graph.person_address where is_current
),
addresses as (
    select uprn, is_communal from graph.address
),
final as (
    select
        current_address.person_id,
        current_address.uprn,
        coalesce(addresses.is_communal, false) as is_communal,
        case
            when coalesce(addresses.is_communal, false) then 'P' || cast(current_address.person_id as varchar)
            when current_address.uprn is not null then 'U' || cast(current_address.uprn as varchar)
            else 'A' || current_address.address_key
        end as household_key
    from current_address
    left join addresses using (uprn)
)
select * from final;
