-- group_key: each new group's smallest member key (the tie-break between groups, and the order fresh ids follow).
select "group", min(member) as group_key
from stable_current_groups
group by "group"
