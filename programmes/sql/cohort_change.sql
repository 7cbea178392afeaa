-- Households that joined or left one programme's cohort since the previous evaluated snapshot, and why.
insert into programmes.cohort_change
with current as (
    select * from programmes.cohort where snapshot_id = '{snapshot}' and programme = '{programme}'
),
previous as (
    select * from programmes.cohort where snapshot_id = '{previous}' and programme = '{programme}'
),
evaluated as (
    select household_id, list(distinct criterion order by criterion) as criteria_now
    from programmes.cohort_evidence where snapshot_id = '{snapshot}' and programme = '{programme}'
    group by household_id
),
households as (
    select household_id from {snapshot}.household
),
joined as (
    select
        current.household_id,
        case
            when previous.household_id is not null then 'back in the cohort: triage decision reopened'
            when '{previous}' = '' then 'first evaluation of this programme'
            else 'meets the rule now (' || current.rule_met || ')'
        end as reason
    from current
    left join previous using (household_id)
    where current.in_cohort and not coalesce(previous.in_cohort, false)
),
left_cohort as (
    select
        previous.household_id,
        case
            when current.household_id is not null then 'removed at triage: ' || coalesce(current.triage_reason, 'no reason')
            when households.household_id is null then 'household no longer exists (members moved, or the household was merged or split)'
            else 'no longer meets the rule; criteria met now: '
                 || coalesce(array_to_string(evaluated.criteria_now, ', '), 'none')
        end as reason
    from previous
    left join current using (household_id)
    left join households using (household_id)
    left join evaluated using (household_id)
    where previous.in_cohort and not coalesce(current.in_cohort, false)
)
select '{snapshot}', nullif('{previous}', ''), '{programme}', household_id, 'joined', reason from joined
union all
select '{snapshot}', nullif('{previous}', ''), '{programme}', household_id, 'left', reason from left_cohort;
