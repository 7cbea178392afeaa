"""Extract-level checks: any problem stops that source's load and keeps its last good data."""

from __future__ import annotations

import polars as pl


def check_extract(
    source: str,
    frame: pl.DataFrame,
    *,
    previous_row_count: int | None,
    required_columns: list[str],
    key_column: str,
    max_drop_share: float = 0.5,
    key_min_filled_share: float = 0.5,
) -> list[str]:
    """Problems with the extract as a whole, each a sentence naming columns and counts, never values."""
    problems = []
    missing = [c for c in required_columns if c not in frame.columns]
    if missing:
        problems.append(f"required column(s) missing: {', '.join(missing)}")
    if previous_row_count and frame.height < previous_row_count * (1 - max_drop_share):
        problems.append(f"row count fell from {previous_row_count:,} to {frame.height:,} "
                        f"(more than {max_drop_share:.0%} down on the last good load)")
    if key_column in frame.columns and frame.height:
        key = pl.col(key_column).cast(pl.String).str.strip_chars()
        filled = frame.select((key.is_not_null() & (key != "")).mean()).item()
        if filled < key_min_filled_share:
            problems.append(f"column {key_column}: only {filled:.0%} of rows have a record key")
        dupes = frame.filter(key.is_not_null() & (key != "") & key.is_duplicated())
        if dupes.height:
            rows = ", ".join(str(r) for r in dupes["_row_number"].head(5).to_list()) if "_row_number" in dupes.columns else ""
            problems.append(f"column {key_column}: {dupes.height:,} rows share a record key with another row "
                            f"(rows {rows}{'…' if dupes.height > 5 else ''})")
    return problems
