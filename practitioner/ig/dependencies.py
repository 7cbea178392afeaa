"""IG pages need an IG officer (re-exported from auth so routes read naturally)."""

from practitioner.auth.dependencies import IgOfficer

__all__ = ["IgOfficer"]
