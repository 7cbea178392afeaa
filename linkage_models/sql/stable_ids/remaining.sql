-- remaining: the overlap left to the rounds (an alone group's id shares members with no other group).
select o.*
from stable_overlap as o
left join stable_alone as a on a."group" = o."group"
where a."group" is null
