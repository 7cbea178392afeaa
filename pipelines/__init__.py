"""familylink's command line, nightly flow and settings."""
