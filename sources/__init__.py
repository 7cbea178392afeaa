"""Sources: one YAML contract per agency extract; read, map, standardise (see README.md).

What the later stages need from here is exported below; the modules behind it are private.
"""

from sources import canonical
from sources._contract import ContractError, SourceContract, load_contract, load_contracts
from sources._standardise import address_tokens, normalise_postcode, standardise_address

__all__ = [
    "ContractError",
    "SourceContract",
    "address_tokens",
    "canonical",
    "load_contract",
    "load_contracts",
    "normalise_postcode",
    "standardise_address",
]
