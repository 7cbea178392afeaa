"""Search by name, date of birth, postcode, address or identifier (service.py)."""
