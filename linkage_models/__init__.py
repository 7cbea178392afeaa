"""Linking people and addresses: Splink person model, address → UPRN matching, clustering, stable ids."""
