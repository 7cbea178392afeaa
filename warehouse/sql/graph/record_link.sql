-- graph.record_link: every staged source record -> its stable person_id, with the evidence.
create or replace table graph.record_link as
with clusters as (
    select * from linkage.person_cluster
),
final as (
    select
        clusters.source,
        clusters.record_id,
        clusters.person_id,
        clusters.match_probability,   -- best link to another record of the same person; null for a lone record
        clusters.cluster_size,
        getvariable('model_version') as model_version,
        getvariable('run_id') as run_id
    from clusters
)
select * from final;
