-- The approved Splink model's input columns for the records in {input}: the same matching forms the nightly
-- link step derives from staging.person_record (first forename, formal forename, surname without spaces).
-- practitioner/referrals/service.py checks every column the saved model uses is here before linking.
select
    source || ':' || record_id as unique_id,
    person_id,
    source,
    record_id,
    split_part(first_name_std, ' ', 1) as first_name_std,
    coalesce(first_name_formal, split_part(first_name_std, ' ', 1)) as first_name_formal,
    replace(last_name_std, ' ', '') as last_name_std,
    date_of_birth,
    sex,
    postcode,
    uprn,
    nhs_number,
    upn,
    pnc_id,
    phone
from {input}
