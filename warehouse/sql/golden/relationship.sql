-- {snapshot}.relationship: parent/carer and partner relationships the sources state, between golden persons
-- (graph.relationship as published, so analysts never need the working warehouse's graph schema).
create table {snapshot}.relationship as
with relationships as (
    select * from graph.relationship
),
final as (
    select
        person_id,
        related_person_id,
        relationship,
        evidence_records,
        stated_by
    from relationships
)
select * from final
order by person_id, related_person_id, relationship;
