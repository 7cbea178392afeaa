-- One condition of one criterion: the events that meet it, per member, within the look-back window.
select
    '{programme}' as programme,
    household_id,
    '{criterion}' as criterion,
    {condition_index} as condition_index,
    person_id,
    source,
    record_id,
    event_type,
    event_date,
    dated_by_extract,
    value,
    match_probability
from _programme_event
where event_type in ({event_types})
  and event_date > getvariable('as_of')::date - interval {months} month
  and event_date <= getvariable('as_of')::date
  {filters}
qualify {per_member}
