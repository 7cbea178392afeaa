-- overlap: for every (new group, previous id) pair, how many members they share.
select c."group", p.id, count(*) as shared, k.group_key
from stable_current_groups as c
inner join stable_previous_ids as p on p.member = c.member
inner join stable_group_key as k on k."group" = c."group"
group by c."group", p.id, k.group_key
