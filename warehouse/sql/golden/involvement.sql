-- {snapshot}.involvement: for each person, every agency, service and named professional involved —
-- the answer to "who else is working with this family?".
create table {snapshot}.involvement as
with involvements as (
    select * from staging.involvement
),
links as (
    select source, record_id, person_id from graph.record_link
),
final as (
    select distinct
        links.person_id,
        involvements.agency,
        involvements.service,
        involvements.worker_name,
        involvements.worker_role,
        involvements.worker_phone,
        involvements.worker_email,
        involvements.start_date,
        involvements.end_date,
        involvements.end_date is null or involvements.end_date >= getvariable('as_of')::date as is_open,
        involvements.source,
        involvements.record_id
    from involvements
    inner join links using (source, record_id)
)
select * from final;
