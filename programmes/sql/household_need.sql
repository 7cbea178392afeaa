-- programmes.household_need: per household, the agencies involved, the needs recorded in the 12 months to
-- the snapshot date, events, interventions current and over the 12 months, and the recorded cost.
insert into programmes.household_need
with window_bounds as (
    select getvariable('as_of')::date as as_of, getvariable('as_of')::date - interval 12 month as window_start
),
households as (
    select household_id, ward_code, ward_name, member_count from {snapshot}.household
),
members as (
    select person_id, household_id from {snapshot}.person where household_id is not null
),
needs as (
    -- attendance is a need only when it is persistent absence (90% or less, the national threshold since 2015)
    select
        e.household_id,
        case when e.event_type = 'attendance' then 'persistent_absence' else e.event_type end as need_type
    from _programme_event as e, window_bounds as w
    where e.event_date > w.window_start and e.event_date <= w.as_of
      and (e.event_type <> 'attendance' or e.value <= 90)
),
need_summary as (
    select household_id, list(distinct need_type order by need_type) as need_types, count(*) as events_12m
    from needs group by household_id
),
involvements as (
    select
        members.household_id,
        i.agency,
        i.is_open,
        coalesce(i.start_date, w.window_start) <= w.as_of
            and coalesce(i.end_date, w.as_of) > w.window_start as open_in_window
    from {snapshot}.involvement as i
    inner join members using (person_id)
    cross join window_bounds as w
),
involvement_summary as (
    select
        household_id,
        list(distinct agency order by agency) as agencies,
        count(*) filter (where is_open) as interventions_current,
        count(*) filter (where open_in_window) as interventions_12m
    from involvements group by household_id
),
costs as (
    select
        household_id,
        sum(coalesce(cost_in_target_year, cost)) filter (where not placeholder) as recorded_cost,
        count(*) filter (where placeholder) as unpriced_items
    from programmes.household_cost where snapshot_id = '{snapshot}' group by household_id
),
final as (
    select
        '{snapshot}' as snapshot_id,
        getvariable('as_of')::date as as_of,
        households.household_id,
        households.ward_code,
        households.ward_name,
        households.member_count,
        coalesce(involvement_summary.agencies, []) as agencies,
        len(coalesce(involvement_summary.agencies, [])) as agency_count,
        len(coalesce(involvement_summary.agencies, [])) >= 3 as known_to_3_plus_agencies,
        coalesce(need_summary.need_types, []) as need_types,
        len(coalesce(need_summary.need_types, [])) as need_count,
        coalesce(need_summary.events_12m, 0) as events_12m,
        coalesce(involvement_summary.interventions_current, 0) as interventions_current,
        coalesce(involvement_summary.interventions_12m, 0) as interventions_12m,
        coalesce(costs.recorded_cost, 0) as recorded_cost,
        coalesce(costs.unpriced_items, 0) as unpriced_items,
        {target_year} as cost_price_year
    from households
    left join need_summary using (household_id)
    left join involvement_summary using (household_id)
    left join costs using (household_id)
)
select * from final;

insert into programmes.need_by_ward
select snapshot_id, ward_code, ward_name, need_type, count(*) as households
from (
    select snapshot_id, ward_code, ward_name, unnest(need_types) as need_type
    from programmes.household_need where snapshot_id = '{snapshot}'
    union all
    select snapshot_id, ward_code, ward_name, 'known_to_3_plus_agencies'
    from programmes.household_need where snapshot_id = '{snapshot}' and known_to_3_plus_agencies
)
group by all;
