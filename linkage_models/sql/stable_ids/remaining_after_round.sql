-- remaining: what a round leaves, without the groups and the ids it matched.
select r.*
from stable_remaining as r
left join stable_mutual as by_group on by_group."group" = r."group"
left join stable_mutual as by_id on by_id.id = r.id
where by_group."group" is null and by_id.id is null
