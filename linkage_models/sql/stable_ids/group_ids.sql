-- group_ids: every group's id. A group left without a previous id takes the next from the sequence (next_id),
-- in order of its smallest member key, so the same inputs always give the same ids.
with fresh as (
    select
        k."group",
        n.next_id + row_number() over (order by k.group_key) - 1 as id
    from stable_group_key as k
    cross join stable_next_id as n
    left join stable_kept as kept on kept."group" = k."group"
    where kept."group" is null
)
select "group", cast(id as bigint) as id, false as is_new from stable_kept
union all
select "group", cast(id as bigint) as id, true as is_new from fresh
