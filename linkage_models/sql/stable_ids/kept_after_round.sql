-- kept: the groups that keep a previous id, after a round (starts as alone.sql).
select "group", id from stable_kept
union all
select "group", id from stable_mutual
