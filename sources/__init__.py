"""Read, map and standardise agency extracts (see README.md).

The public surface other packages use: contracts, mapping a row onto the canonical schema, and the
standardisation ingest applies — so a record arriving another way (a referral posted to the practitioner
service) is standardised by exactly the same code as a nightly extract.
"""

from sources import canonical
from sources._contract import ContractError, SourceContract, load_contract, load_contracts
from sources._mapping import apply_contract
from sources._standardise import clean_name, formal_first_name, normalise_postcode, standardise_person_records

__all__ = ["ContractError", "SourceContract", "apply_contract", "canonical", "clean_name", "formal_first_name",
           "load_contract", "load_contracts", "normalise_postcode", "standardise_person_records"]
