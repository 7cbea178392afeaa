"""Real-time linking of referrals and their nightly reconciliation (service.py)."""
