-- The household rule of one programme over its criteria met: households that qualify, with the rule that
-- made them, evidence counts, the date they first qualified and the triage decision in force.
insert into programmes.cohort
with evidence as (
    select * from programmes.cohort_evidence where snapshot_id = '{snapshot}' and programme = '{programme}'
),
met as (
    select
        household_id,
        list(distinct criterion order by criterion) as criteria_met,
        count(distinct (source, record_id)) as evidence_records,
        count(distinct (source, record_id)) filter (where doubtful_link) as doubtful_evidence_records
    from evidence
    group by household_id
),
households as (
    select household_id, ward_code, ward_name from {snapshot}.household
),
children as (
    select household_id, bool_or(age <= {dependent_child_max_age}) as has_dependent_child
    from {snapshot}.person where household_id is not null group by household_id
),
ruled as (
    select met.*, households.ward_code, households.ward_name, {rule_met} as rule_met
    from met
    inner join households using (household_id)
    left join children using (household_id)
),
earlier as (
    select household_id, min(first_qualified) as first_qualified
    from programmes.cohort
    where programme = '{programme}' and snapshot_id <> '{snapshot}' and snapshot_id in {was_published}
    group by household_id
),
triage as (
    select household_id, decision, reason_code
    from programmes.triage_decision where programme = '{programme}'
    qualify row_number() over (partition by household_id order by decided_at desc, decision_id desc) = 1
),
final as (
    select
        '{snapshot}' as snapshot_id,
        getvariable('as_of')::date as as_of,
        '{programme}' as programme,
        ruled.household_id,
        ruled.ward_code,
        ruled.ward_name,
        ruled.criteria_met,
        len(ruled.criteria_met) as criteria_count,
        ruled.rule_met,
        ruled.evidence_records,
        ruled.doubtful_evidence_records,
        least(coalesce(earlier.first_qualified, getvariable('as_of')::date), getvariable('as_of')::date)
            as first_qualified,
        case when triage.decision = 'reopened' then null else triage.decision end as triage_decision,
        case when triage.decision = 'removed' then triage.reason_code end as triage_reason,
        coalesce(triage.decision, '') <> 'removed' as in_cohort
    from ruled
    left join earlier using (household_id)
    left join triage using (household_id)
    where ruled.rule_met is not null
)
select * from final;
