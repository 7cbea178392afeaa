-- programmes.household_cost: recorded interventions × unit costs, per household and cost item, over the 12
-- months to the snapshot date. Events are priced per event; involvements per week or per year open in the
-- window. An item whose unit cost is a placeholder is counted with a null cost. `_unit_cost` and
-- `_price_index` are registered from programmes/unit_costs.yaml.
insert into programmes.household_cost
with window_bounds as (
    select getvariable('as_of')::date as as_of, getvariable('as_of')::date - interval 12 month as window_start
),
members as (
    select person_id, household_id from {snapshot}.person where household_id is not null
),
households as (
    select household_id, ward_code, ward_name from {snapshot}.household
),
agency_of_source as (
    select source, any_value(agency order by agency) as agency from staging.involvement group by source
),
events as (
    select e.household_id, e.source, e.event_type, e.detail
    from _programme_event as e, window_bounds as w
    where e.event_date > w.window_start and e.event_date <= w.as_of
),
numbered_events as (
    select *, row_number() over () as event_row from events
),
event_matches as (
    -- the first matching cost row wins: rows naming a detail pattern before the general row, then file order
    select numbered_events.household_id, numbered_events.source, c.key as cost_key
    from numbered_events
    inner join _unit_cost as c
        on c.event_type = numbered_events.event_type
       and (c.detail_matches is null or regexp_matches(coalesce(numbered_events.detail, ''), c.detail_matches))
    qualify row_number() over (partition by numbered_events.event_row
                               order by (c.detail_matches is null), c.position) = 1
),
event_units as (
    select
        event_matches.household_id,
        coalesce(agency_of_source.agency, event_matches.source) as agency,
        event_matches.cost_key,
        count(*)::double as units
    from event_matches
    left join agency_of_source using (source)
    group by all
),
involvements as (
    select
        members.household_id,
        i.agency,
        greatest(coalesce(i.start_date, w.window_start), w.window_start) as open_from,
        least(coalesce(i.end_date, w.as_of), w.as_of) as open_to
    from {snapshot}.involvement as i
    inner join members using (person_id)
    cross join window_bounds as w
    where coalesce(i.start_date, w.window_start) <= w.as_of
      and coalesce(i.end_date, w.as_of) > w.window_start
),
involvement_units as (
    select
        involvements.household_id,
        involvements.agency,
        c.key as cost_key,
        sum(case c.unit
                when 'per_week_open' then date_diff('day', open_from, open_to) / 7.0
                else date_diff('day', open_from, open_to) / 365.25
            end) as units
    from involvements
    inner join _unit_cost as c on c.agency = involvements.agency
    group by all
),
items as (
    select * from event_units
    union all
    select * from involvement_units
),
final as (
    select
        '{snapshot}' as snapshot_id,
        getvariable('as_of')::date as as_of,
        items.household_id,
        households.ward_code,
        households.ward_name,
        items.agency,
        items.cost_key,
        c.title as cost_title,
        c.unit,
        items.units,
        c.cost as unit_cost,
        c.price_year,
        items.units * c.cost as cost,
        {target_year} as target_price_year,
        items.units * c.cost * (target.value / base.value) as cost_in_target_year,
        target.value is not null and base.value is not null as uplifted,
        c.placeholder,
        c.source as cost_source
    from items
    inner join _unit_cost as c on c.key = items.cost_key
    left join households using (household_id)
    left join _price_index as base on base.year = c.price_year
    left join _price_index as target on target.year = {target_year}
)
select * from final;
