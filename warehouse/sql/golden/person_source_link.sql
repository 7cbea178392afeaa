-- {snapshot}.person_source_link: every staged source record -> its person_id, so an agency can map its
-- own records to the master id.
create table {snapshot}.person_source_link as
with links as (
    select * from graph.record_link
),
final as (
    select
        source,
        record_id,
        person_id,
        match_probability,
        cluster_size,
        model_version
    from links
)
select * from final;
