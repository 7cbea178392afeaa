"""Hash-chained audit of every access (service.py), its writer as a dependency (dependencies.py)."""
