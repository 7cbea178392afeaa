"""familylink's command line, nightly flow and settings."""

import os

# polars allocates through its own jemalloc, which keeps freed pages for reuse instead of giving them back: a nightly
# run on 1M records still held 1.5 GB after ingest that nothing used while the link stage needed memory (peak 5.5 GB;
# 4.4 GB with freed pages returned at once). jemalloc reads this when polars first allocates, so it is set here,
# before anything imports polars; an operator's own setting wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")
