-- graph.household and the final graph.household_member: stable household ids, roles and ages.
create or replace table graph.household_member as
with members as (
    select * from graph.household_member
),
ids as (
    select * from linkage.household_assignment
),
dob_counts as (
    select
        l.person_id,
        r.date_of_birth,
        count(*) as records,
        min(coalesce(t.trust_rank, 99)) as best_rank
    from staging.person_record as r
    inner join graph.record_link as l using (source, record_id)
    left join linkage.source_trust as t on t.source = r.source
    where r.date_of_birth is not null
    group by all
),
dob as (
    -- the most frequently recorded date of birth (ties: the most trusted source, then the earliest date)
    select person_id, date_of_birth
    from dob_counts
    qualify row_number() over (partition by person_id order by records desc, best_rank, date_of_birth) = 1
),
parents as (
    select distinct person_id from graph.relationship where relationship = 'parent_of'
),
final as (
    select
        ids.household_id,
        members.person_id,
        members.uprn,
        dob.date_of_birth,
        date_diff('year', dob.date_of_birth, getvariable('as_of')::date)
            - case when strftime(getvariable('as_of')::date, '%m%d') < strftime(dob.date_of_birth, '%m%d') then 1 else 0 end
            as age,
        members.is_communal
    from members
    inner join ids using (household_key)
    left join dob using (person_id)
)
select
    final.*,
    case
        when final.age is not null and final.age <= 25 and final.person_id not in (select person_id from parents)
            then 'child_or_young_person'
        else 'adult'
    end as role,
    coalesce(final.age <= 25, false) as is_child_0_25
from final;

create or replace table graph.household as
with members as (
    select * from graph.household_member
),
addresses as (
    select * from graph.address
),
final as (
    select
        members.household_id,
        any_value(members.uprn) as uprn,
        any_value(addresses.ward_code) as ward_code,
        any_value(addresses.ward_name) as ward_name,
        bool_or(members.is_communal) as is_communal_establishment,
        count(*) as members,
        count(*) filter (where members.role = 'child_or_young_person') as children_0_25
    from members
    left join addresses using (uprn)
    group by members.household_id
)
select * from final;
