"""Sources: one YAML contract per agency extract; read, map, standardise (see README.md).

The public surface other packages use: contracts, mapping a row onto the canonical schema, the standardisation
ingest applies (so a record arriving another way — a referral posted to the practitioner service — is
standardised by exactly the same code as a nightly extract), and the council gazetteer read through its own
contract. The modules behind it are private.
"""

from sources import canonical
from sources._contract import ContractError, SourceContract, load_contract, load_contracts
from sources._gazetteer import (
    GazetteerContract,
    GazetteerError,
    find_gazetteer,
    load_gazetteer_contract,
    read_gazetteer,
)
from sources._mapping import apply_contract, parse_dates
from sources._readers import file_sha256
from sources._standardise import (
    ATTRIBUTE,
    PLACEHOLDER_DATES,
    address_tokens,
    clean_name,
    formal_first_name,
    is_placeholder_forename,
    normalise_postcode,
    standardise_address,
    standardise_person_records,
)

__all__ = [
    "ATTRIBUTE",
    "PLACEHOLDER_DATES",
    "ContractError",
    "GazetteerContract",
    "GazetteerError",
    "SourceContract",
    "address_tokens",
    "apply_contract",
    "canonical",
    "clean_name",
    "file_sha256",
    "find_gazetteer",
    "formal_first_name",
    "is_placeholder_forename",
    "load_contract",
    "load_contracts",
    "load_gazetteer_contract",
    "normalise_postcode",
    "parse_dates",
    "read_gazetteer",
    "standardise_address",
    "standardise_person_records",
]
