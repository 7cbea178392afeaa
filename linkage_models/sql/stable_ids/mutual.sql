-- mutual: one round of the matching. A (group, id) pair is taken when it is the best for both sides: for the id,
-- the group sharing most members (ties: the smallest group key); for the group, the id sharing most members
-- (ties: the older, smaller id).
select by_id."group", by_id.id
from (
    select "group", id, row_number() over (partition by id order by shared desc, group_key) as rank_for_id
    from stable_remaining
) as by_id
inner join (
    select "group", id, row_number() over (partition by "group" order by shared desc, id) as rank_for_group
    from stable_remaining
) as by_group on by_group."group" = by_id."group" and by_group.id = by_id.id
where by_id.rank_for_id = 1 and by_group.rank_for_group = 1
