"""The noise kinds of real agency systems, as small vectorised functions.

Each function takes the clean values, a boolean mask of the rows to change and the random draws it needs,
and returns the new values plus the mask of rows it really changed (a typo cannot be made in a two-letter
name; a day/month swap needs a day of 12 or less). The city logs exactly the rows returned as changed, so
the truth's noise log explains every difference between a record and its person.

Nothing here reads the linker's reference tables: name variants come from this package's own
reference/name_variants.csv.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

_REF = Path(__file__).parent / "reference"

TYPO_KINDS = ("typo_insert", "typo_delete", "typo_transpose", "typo_substitute", "typo_first_letter")
_LETTERS = np.array(list("abcdefghiklmnoprstuwy"))

# Spelling-by-ear slips: each pair is tried both ways round (what a call handler might type for a name heard).
_PHONETIC = [("ph", "f"), ("ck", "k"), ("c", "k"), ("ie", "y"), ("ee", "ea"), ("ou", "ow"), ("ai", "ay"),
             ("z", "s"), ("tt", "t"), ("ll", "l"), ("nn", "n"), ("mm", "m"), ("th", "t"), ("v", "w"),
             ("ey", "y"), ("son", "sen"), ("aa", "a"), ("oo", "u"), ("ch", "sh"), ("x", "ks"), ("q", "k"),
             ("i", "ee"), ("e", "a")]
_PHONETIC_RULES = _PHONETIC + [(b, a) for a, b in _PHONETIC if (a, b) not in {("th", "t"), ("aa", "a")}]


def _series(values) -> pl.Series:
    return values if isinstance(values, pl.Series) else pl.Series(values, dtype=pl.String)


def typo(values, mask: np.ndarray, kind: np.ndarray, where: np.ndarray, letter: np.ndarray) -> tuple[pl.Series, np.ndarray]:
    """Keyboard slips anywhere in the word. kind: 0 insert, 1 delete, 2 transpose, 3 substitute, 4 first letter.

    `where` in [0, 1) picks the position; `letter` the character typed. Names under three letters are left alone.
    """
    v = _series(values)
    frame = pl.DataFrame({"v": v, "m": mask, "k": kind, "w": where, "c": letter})
    n = pl.col("v").str.len_chars()
    p = (pl.col("w") * (n - 1)).floor().cast(pl.Int64).clip(1, None)
    head, rest = pl.col("v").str.slice(0, p), pl.col("v").str.slice(p)
    new = (
        pl.when(pl.col("k") == 0).then(head + pl.col("c") + rest)
        .when(pl.col("k") == 1).then(head + pl.col("v").str.slice(p + 1))
        .when(pl.col("k") == 2).then(pl.when(p <= n - 2).then(
            head + pl.col("v").str.slice(p + 1, 1) + pl.col("v").str.slice(p, 1) + pl.col("v").str.slice(p + 2)))
        .when(pl.col("k") == 3).then(head + pl.col("c") + pl.col("v").str.slice(p + 1))
        .otherwise(pl.col("c").str.to_uppercase() + pl.col("v").str.slice(1))
    )
    out = frame.select(pl.when(pl.col("m") & (n >= 3)).then(new).otherwise(pl.col("v")).fill_null(pl.col("v")).alias("v"))
    result = out["v"]
    return result, _changed(v, result)


def phonetic(values, mask: np.ndarray, pick: np.ndarray) -> tuple[pl.Series, np.ndarray]:
    """A name spelt as heard: one sound rewritten after the first letter (ph→f, ck→k, ie→y, double letters...).

    Among the rules that apply to a name, `pick` (a float in [0, 1)) chooses one.
    """
    v = _series(values)
    rows = np.nonzero(mask)[0]
    if len(rows) == 0:
        return v, np.zeros(len(v), dtype=bool)
    sub = v.gather(rows)
    tail = sub.str.slice(1)
    applicable = np.column_stack([tail.str.contains(a, literal=True).fill_null(False).to_numpy()
                                  for a, _ in _PHONETIC_RULES])
    count = applicable.sum(axis=1)
    choice_rank = np.floor(pick[rows] * np.maximum(count, 1)).astype(np.int64)
    cumulative = np.cumsum(applicable, axis=1) - 1
    chosen = np.where(count > 0, np.argmax(applicable & (cumulative == choice_rank[:, None]), axis=1), -1)
    frame = pl.DataFrame({"v": sub, "i": chosen})
    expr = pl.col("v")
    for i, (a, b) in enumerate(_PHONETIC_RULES):
        swapped = pl.col("v").str.slice(0, 1) + pl.col("v").str.slice(1).str.replace(a, b, literal=True)
        expr = pl.when(pl.col("i") == i).then(swapped).otherwise(expr)
    changed = frame.select(expr.alias("v"))["v"]
    out = v.clone().scatter(rows, changed)
    return out, _changed(v, out)


def fold_diacritics(values) -> pl.Series:
    """Ł→L, é→e, ș→s: what a system without Unicode support keeps of a name."""
    v = _series(values)
    uniques = v.unique().drop_nulls().to_list()
    mapping = {u: _fold(u) for u in uniques}
    return v.replace_strict(mapping, default=None) if mapping else v


_SPECIAL = str.maketrans({"Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "ß": "ss", "Đ": "D", "đ": "d", "Æ": "AE", "æ": "ae"})


@lru_cache(maxsize=100_000)
def _fold(text: str) -> str:
    text = text.translate(_SPECIAL)
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def has_diacritics(values) -> np.ndarray:
    v = _series(values)
    return (v != fold_diacritics(v)).fill_null(False).to_numpy()


@lru_cache(maxsize=1)
def _variants() -> pl.DataFrame:
    return pl.read_csv(_REF / "name_variants.csv")


def variant_table(kind: str) -> dict[str, list[str]]:
    frame = _variants().filter(pl.col("kind") == kind).group_by("name", maintain_order=True).agg("variant")
    return dict(zip(frame["name"].to_list(), frame["variant"].to_list()))


def name_variant(values, mask: np.ndarray, pick: np.ndarray, kind: str) -> tuple[pl.Series, np.ndarray]:
    """Another recorded form of the same name: a nickname (William→Bill) or a transliteration (Yusuf→Yousef)."""
    v = _series(values)
    table = variant_table(kind)
    folded = {_fold(k): val for k, val in table.items()}
    table = {**folded, **table}
    options = v.replace_strict(table, default=None, return_dtype=pl.List(pl.String))
    frame = pl.DataFrame({"v": v, "o": options, "p": pick, "m": mask})
    out = frame.select(
        pl.when(pl.col("m") & pl.col("o").is_not_null())
        .then(pl.col("o").list.get((pl.col("p") % pl.col("o").list.len().clip(1, None)).cast(pl.Int64), null_on_oob=True))
        .otherwise(pl.col("v")).fill_null(pl.col("v")).alias("v")
    )["v"]
    return out, _changed(v, out)


def has_variant(values, kind: str) -> np.ndarray:
    table = variant_table(kind)
    keys = set(table) | {_fold(k) for k in table}
    return _series(values).is_in(list(keys)).fill_null(False).to_numpy()


def case_whitespace(values, mask: np.ndarray) -> tuple[pl.Series, np.ndarray]:
    """Upper case and stray spaces, as typed into an old system."""
    v = _series(values)
    out = pl.DataFrame({"v": v, "m": mask}).select(
        pl.when(pl.col("m")).then("  " + pl.col("v").str.to_uppercase() + " ").otherwise(pl.col("v")).alias("v"))["v"]
    return out, _changed(v, out)


# ---------------------------------------------------------------------------------------------- dates
def dates(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> pl.Series:
    """Dates from parts; impossible combinations become null (callers only build valid ones)."""
    frame = pl.DataFrame({"y": year.astype(np.int32), "m": month.astype(np.int8), "d": day.astype(np.int8)})
    text = frame.select(pl.format("{}-{}-{}", "y", pl.col("m").cast(pl.String).str.zfill(2),
                                  pl.col("d").cast(pl.String).str.zfill(2)).alias("t"))["t"]
    return text.str.to_date("%Y-%m-%d", strict=False)


def dob_transposed(dob: pl.Series, mask: np.ndarray) -> tuple[pl.Series, np.ndarray]:
    """Day and month swapped (American order or a slip) — possible only where the day is 12 or less."""
    y, m, d = _parts(dob)
    ok = mask & (d <= 12) & (d != m) & ~dob.is_null().to_numpy()
    return _rebuild(dob, ok, y, np.where(ok, d, m), np.where(ok, m, d))


def dob_digit(dob: pl.Series, mask: np.ndarray, position: np.ndarray, digit: np.ndarray) -> tuple[pl.Series, np.ndarray]:
    """One digit of ddmmyyyy typed wrong: day, month or one of the last three digits of the year."""
    text = dob.dt.strftime("%d%m%Y")
    frame = pl.DataFrame({"t": text, "p": np.array([0, 1, 2, 3, 5, 6, 7])[position % 7],
                          "c": digit.astype(str), "m": mask})
    typed = frame.select(
        pl.when(pl.col("m") & pl.col("t").is_not_null())
        .then(pl.col("t").str.slice(0, pl.col("p")) + pl.col("c") + pl.col("t").str.slice(pl.col("p") + 1))
        .otherwise(pl.col("t")).alias("t"))["t"]
    parsed = typed.str.to_date("%d%m%Y", strict=False)
    ok = mask & parsed.is_not_null().to_numpy() & (parsed != dob).fill_null(False).to_numpy()
    ok &= (parsed.dt.year() >= 1900).fill_null(False).to_numpy()
    out = pl.Series(np.where(ok, parsed.to_numpy(), dob.to_numpy())).cast(pl.Date)
    return out, ok


def dob_year_off(dob: pl.Series, mask: np.ndarray, up: np.ndarray, latest_year: int) -> tuple[pl.Series, np.ndarray]:
    y, m, d = _parts(dob)
    shift = np.where(up & (y < latest_year), 1, -1)
    ok = mask & ~dob.is_null().to_numpy()
    return _rebuild(dob, ok, np.where(ok, y + shift, y), m, np.where(ok & (m == 2) & (d == 29), 28, d))


def dob_month_off(dob: pl.Series, mask: np.ndarray, up: np.ndarray) -> tuple[pl.Series, np.ndarray]:
    """A date a month out (the re-keyed duplicate's usual slip)."""
    y, m, d = _parts(dob)
    new_m = np.where(up, np.where(m == 12, 11, m + 1), np.where(m == 1, 2, m - 1))
    ok = mask & ~dob.is_null().to_numpy()
    return _rebuild(dob, ok, y, np.where(ok, new_m, m), np.where(ok, np.minimum(d, 28), d))


def dob_default(dob: pl.Series, mask: np.ndarray, placeholder: np.ndarray) -> tuple[pl.Series, np.ndarray]:
    """An unknown date of birth entered as 1 January of the believed year, or as a placeholder (1900-01-01)."""
    y, m, d = _parts(dob)
    ok = mask & ~dob.is_null().to_numpy() & ~((m == 1) & (d == 1))
    year = np.where(ok & placeholder, 1900, y)
    return _rebuild(dob, ok, year, np.where(ok, 1, m), np.where(ok, 1, d))


def _parts(dob: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (dob.dt.year().fill_null(2000).to_numpy().astype(np.int64), dob.dt.month().fill_null(1).to_numpy().astype(np.int64),
            dob.dt.day().fill_null(1).to_numpy().astype(np.int64))


def _rebuild(dob: pl.Series, ok: np.ndarray, y, m, d) -> tuple[pl.Series, np.ndarray]:
    new = dates(np.asarray(y), np.asarray(m), np.asarray(d))
    out = pl.Series(np.where(ok, new.to_numpy(), dob.to_numpy())).cast(pl.Date)
    return out, ok & (out != dob).fill_null(False).to_numpy()


# ------------------------------------------------------------------------------------------ identifiers
def nhs_check_digit(body: np.ndarray) -> np.ndarray:
    """Modulus 11 over nine digits (weights 10..2); 10 means no valid number has this body."""
    check = 11 - (body @ np.arange(10, 1, -1)) % 11
    return np.where(check == 11, 0, check)


def nhs_mistyped(values, mask: np.ndarray, position: np.ndarray, keep_valid: np.ndarray) -> tuple[pl.Series, np.ndarray]:
    """One digit wrong. Where keep_valid, a second digit is chosen so the check digit still passes
    (the dangerous kind: a valid number of someone else)."""
    v = _series(values).to_numpy().astype("<U10")
    n = len(v)
    ok = mask & (np.char.str_len(v) == 10)
    if not ok.any():
        return _series(values), ok
    digits = np.zeros((n, 10), dtype=np.int64)
    digits[ok] = np.array([list(map(int, s)) for s in v[ok]])
    rows = np.nonzero(ok)[0]
    pos = position[rows] % 9
    new = digits[rows].copy()
    new[np.arange(len(rows)), pos] = (new[np.arange(len(rows)), pos] + 1 + (position[rows] % 8)) % 10
    check = nhs_check_digit(new[:, :9])
    valid = keep_valid[rows] & (check != 10)
    new[:, 9] = np.where(valid, check, new[:, 9])
    out = v.copy()
    out[rows] = ["".join(map(str, r)) for r in new]
    return pl.Series(out), ok


def _changed(before: pl.Series, after: pl.Series) -> np.ndarray:
    return (before != after).fill_null(before.is_null() != after.is_null()).to_numpy()
