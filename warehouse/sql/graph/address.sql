-- graph.address: every gazetteer property (UPRN) with its ward; the key households hang from.
create or replace table graph.address as
with source as (
    select * from linkage.gazetteer
),
final as (
    select
        uprn,
        usrn,
        address_std as address,
        postcode,
        ward_code,
        ward_name,
        classification_code,
        is_communal
    from source
)
select * from final;
