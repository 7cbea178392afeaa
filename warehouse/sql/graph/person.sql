-- graph.person: one row per stable person_id known to this run.
create or replace table graph.person as
with links as (
    select * from graph.record_link
),
final as (
    select
        person_id,
        count(*) as source_records,
        count(distinct source) as sources,
        list(distinct source order by source) as source_list
    from links
    group by person_id
)
select * from final;
