-- programmes.pseudo_*: the cohort and household needs for analysts without direct identifiers: keyed-hash
-- household keys (the same keys as pseudonymised.household, from _pseudonym), no evidence records, no
-- triage notes, the first qualifying date to the month.
insert into programmes.pseudo_cohort
select
    c.snapshot_id,
    c.programme,
    k.pseudonym as household_key,
    c.ward_code,
    c.ward_name,
    c.criteria_met,
    c.criteria_count,
    date_trunc('month', c.first_qualified)::date as first_qualified_month,
    c.triage_decision,
    c.in_cohort
from programmes.cohort as c
inner join _pseudonym as k on k.kind = 'household' and k.id = c.household_id
where c.snapshot_id = '{snapshot}';

insert into programmes.pseudo_household_need
select
    n.snapshot_id,
    k.pseudonym as household_key,
    n.* exclude (snapshot_id, as_of, household_id)
from programmes.household_need as n
inner join _pseudonym as k on k.kind = 'household' and k.id = n.household_id
where n.snapshot_id = '{snapshot}';
