-- alone: a group sharing members with one previous id only, which shares members with that group only, is a
-- mutual best at once: most groups on most nights. The rounds (mutual.sql) sort only what is left.
select "group", id
from (
    select
        "group",
        id,
        count(*) over (partition by "group") as ids_of_group,
        count(*) over (partition by id) as groups_of_id
    from stable_overlap
) as counted
where ids_of_group = 1 and groups_of_id = 1
