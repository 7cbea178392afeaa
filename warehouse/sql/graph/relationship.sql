-- graph.relationship: parent/child and partner relationships stated by the sources, between stable persons.
create or replace table graph.relationship as
with stated as (
    select * from staging.stated_relationship
),
links as (
    select source, record_id, person_id from graph.record_link
),
renamed as (
    select
        subject.person_id,
        related.person_id as related_person_id,
        stated.relationship,
        stated.source,
        stated.record_id,
        stated.related_record_id
    from stated
    inner join links as subject on subject.source = stated.source and subject.record_id = stated.record_id
    inner join links as related on related.source = stated.source and related.record_id = stated.related_record_id
    where subject.person_id <> related.person_id
),
final as (
    select
        person_id,
        related_person_id,
        relationship,
        count(*) as evidence_records,
        list(distinct source order by source) as stated_by
    from renamed
    group by all
)
select * from final;
