"""The person page: who is involved and how to contact them (service.py)."""
