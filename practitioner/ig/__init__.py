"""Information governance: alerts, review queue, consent, the IG page."""
