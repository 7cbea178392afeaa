-- lineage: a previous id whose members now sit in a group that kept another id was merged into it; a group that
-- got a new id while holding members of a surviving id was split from it; a new id holding no member of a
-- surviving id is new; a previous id whose members are all gone (to no group at all) is retired.
with moves as (
    select p.id as old_id, g.id as new_id, count(*) as members
    from stable_current_groups as c
    inner join stable_group_ids as g on g."group" = c."group"
    inner join stable_previous_ids as p on p.member = c.member
    where p.id <> g.id
    group by p.id, g.id
),
classified as (
    select
        moves.*,
        old_kept.id is not null as old_survives,
        coalesce(target.is_new, false) as into_new
    from moves
    left join stable_group_ids as old_kept on old_kept.id = moves.old_id
    left join stable_group_ids as target on target.id = moves.new_id
),
splits as (
    select new_id, old_id, members from classified where into_new and old_survives
),
previous_distinct as (
    select distinct id from stable_previous_ids
)
select 'new' as event, g.id, cast(null as bigint) as related_id, cast(null as bigint) as members
from stable_group_ids as g
left join (select distinct new_id from splits) as s on s.new_id = g.id
where g.is_new and s.new_id is null
union all
select 'merge' as event, new_id as id, old_id as related_id, members
from classified
where not old_survives and not into_new
union all
select 'split' as event, new_id as id, old_id as related_id, members
from splits
union all
select 'retired' as event, p.id, cast(null as bigint) as related_id, cast(null as bigint) as members
from previous_distinct as p
left join stable_group_ids as g on g.id = p.id
left join (select distinct old_id from moves) as m on m.old_id = p.id
where g.id is null and m.old_id is null
