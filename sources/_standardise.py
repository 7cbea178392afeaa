"""Vectorised standardisation of canonical person records (polars expressions).

Derived columns sit beside what the source said: first_name/last_name stay as received, and
first_name_std, first_name_formal, last_name_std, address_std, address_tokens are added. Identifiers
are replaced by their normalised form, or null when invalid, and every invalid value adds a flag to
`quality_flags` (e.g. "nhs_number_invalid"); an invalid identifier never rejects the row.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from pathlib import Path

import polars as pl

_NICKNAMES = Path(__file__).parent / "reference" / "nicknames.csv"
# a title before a name is dropped ("Mr John Smith"); "Lord" and "Lady" only when alone in the forename (Lord is
# a surname)
_PREFIX_TITLES = "mr|mrs|ms|miss|mx|dr|master|rev|prof|sir|dame"
_TITLES = rf"^({_PREFIX_TITLES})\.?\s+"
_TITLE_ALONE = rf"^({_PREFIX_TITLES}|lord|lady)$"  # a forename that is only a title
OUTWARD = r"(?:[A-Z][0-9]|[A-Z][0-9]{2}|[A-Z][0-9][A-Z]|[A-Z]{2}[0-9]|[A-Z]{2}[0-9]{2}|[A-Z]{2}[0-9][A-Z])"
INWARD = r"[0-9][A-Z]{2}"
POSTCODE = rf"^{OUTWARD}{INWARD}$"
_POSTCODE_IN_TEXT = rf"\b({OUTWARD})\s*({INWARD})\b"
_ABBREVIATIONS = {
    "RD": "ROAD", "ST": "STREET", "AVE": "AVENUE", "AV": "AVENUE", "CL": "CLOSE", "CRES": "CRESCENT",
    "DR": "DRIVE", "LN": "LANE", "GDNS": "GARDENS", "CT": "COURT", "PL": "PLACE", "SQ": "SQUARE",
    "TER": "TERRACE", "TERR": "TERRACE", "GR": "GROVE", "FLT": "FLAT", "APT": "FLAT", "APARTMENT": "FLAT",
}
_UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"
# dates case systems put in when the real one is unknown: flagged (date_of_birth_placeholder), since they
# make strangers agree on date of birth
PLACEHOLDER_DATES = [dt.date(1900, 1, 1), dt.date(1899, 12, 31), dt.date(1901, 1, 1), dt.date(1800, 1, 1),
                     dt.date(1111, 11, 11), dt.date(9999, 12, 31), dt.date(2999, 12, 31), dt.date(2099, 12, 31)]
# forenames case systems put in before a child is named or when the name is not known ("Baby", "Baby of
# Smith", "Unborn", "Unknown", "NK"): not a name, so cleared for matching (two babies would agree) and flagged
# first_name_placeholder; the original stays in first_name
PLACEHOLDER_FORENAME = (r"^(baby|unborn|unknown|not known|nk|n k|infant|newborn|tbc|tba|twin|male|female)( .*)?$"
                        # a forename field holding only a title ("Mr", "Sir", "Dr": the name was not known, or went in
                        # another field) is no name either: two records would agree on it
                        rf"|{_TITLE_ALONE}")
_NI_PREFIX_BANNED = ["BG", "GB", "NK", "KN", "TN", "NT", "ZZ"]
# what systems key into a postcode, phone or email field when the real value is unknown ("N/A", "TBC", "NFA",
# "none@none.com"): not evidence, since strangers would agree on it. Compared upper case, letters and digits only
# (an email's part before the @). One character repeated ("XXXX", "00000000000", "0000000000" as an NHS number)
# is a placeholder too, and so are the NHS's pseudo-postcodes (ZZ99 3VZ no fixed abode, ZZ99 3WZ not known…).
# Each is cleared and flagged <field>_placeholder, the original kept in the raw row.
PLACEHOLDER_WORDS = ["NA", "NK", "NKA", "NIL", "NONE", "NULL", "UNK", "UNKNOWN", "NOTKNOWN", "NOTGIVEN", "NOTSTATED",
                     "TBC", "TBA", "TBD", "NFA", "NOFIXEDABODE", "REFUSED", "DECLINED", "NOPOSTCODE", "NOEMAIL",
                     "NOMAIL", "NOPHONE", "NONUMBER", "NOTAPPLICABLE", "TEST", "DUMMY"]
_PSEUDO_POSTCODE_OUTWARD = "ZZ99"


def is_placeholder_forename(first_std: str | None) -> bool:
    """A cleaned forename that is no name ("baby", "unborn", "nk", a title alone): what standardisation clears
    and flags first_name_placeholder, for one value (the practitioner's search parses queries with it)."""
    return bool(first_std) and re.search(PLACEHOLDER_FORENAME, first_std) is not None


@lru_cache(maxsize=1)
def _nickname_map() -> dict[str, str]:
    """nickname → formal forename: our own list (sources/reference/nicknames.csv, UK usage, first), then every
    nickname of the `nicknames` package's curated English list that stands for one formal name only. A nickname
    of several (Bert: Albert, Herbert, Robert…) is left as it is: one formal name cannot be chosen for it."""
    import csv

    from nicknames import with_names_csv_path

    formal: dict[str, set[str]] = {}
    with with_names_csv_path() as path, open(path, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["relationship"] == "has_nickname":
                formal.setdefault(row["name2"].strip().lower(), set()).add(row["name1"].strip().lower())
    # a name the list also gives nicknames of is a formal name in its own right (Alexander, Amelia), never
    # mapped to another
    formal_names = {name for names in formal.values() for name in names}
    mapping = {nickname: next(iter(names)) for nickname, names in formal.items()
               if len(names) == 1 and nickname not in formal_names}
    frame = pl.read_csv(_NICKNAMES)
    mapping.update(zip(frame["nickname"].to_list(), frame["formal"].to_list()))
    return mapping


def _transliterate(values: pl.Series) -> pl.Series:
    """Names in other scripts in Latin letters (Łukasz → Lukasz, Дмитрий → Dmitriy, Μαρία → Maria, 王伟 →
    WangWei), by anyascii. Only the distinct non-ASCII values are looked up, so a million ASCII names cost one
    regex pass."""
    from anyascii import anyascii

    odd = values.filter(values.str.contains(r"[^\x00-\x7F]").fill_null(False)).unique()
    if odd.len() == 0:
        return values
    return values.replace({value: anyascii(value) for value in odd.to_list()})


def transliterate(expr: pl.Expr) -> pl.Expr:
    return expr.map_batches(_transliterate, return_dtype=pl.String)


def _latin(expr: pl.Expr) -> pl.Expr:
    """Latin letters without accents: other scripts transliterated, then diacritics dropped (é → e)."""
    return transliterate(expr).str.normalize("NFKD").str.replace_all(r"\p{M}", "")


def clean_name(expr: pl.Expr) -> pl.Expr:
    """lower case, transliterated to Latin letters (the original stays in first_name/last_name), accents
    dropped, titles and punctuation removed (hyphens become spaces), spaces collapsed."""
    text = (
        _latin(expr).str.to_lowercase()
        .str.replace_all(r"[’'`.]", "")
        .str.replace_all(r"[^a-z\s-]", " ")
        .str.replace_all(r"-", " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
        .str.replace(_TITLES, "")
    )
    return pl.when(text == "").then(None).otherwise(text)


def formal_first_name(std_expr: pl.Expr) -> pl.Expr:
    """Nickname → formal name (bill → william); a name that is not a nickname is returned as it is."""
    first_word = std_expr.str.split(" ").list.first()
    return first_word.replace(_nickname_map())


def normalise_postcode(expr: pl.Expr) -> pl.Expr:
    compact = expr.str.to_uppercase().str.replace_all(r"[^A-Z0-9]", "")
    valid = compact.str.contains(POSTCODE)
    return pl.when(valid).then(compact.str.slice(0, compact.str.len_chars() - 3) + " " + compact.str.slice(-3)).otherwise(None)


def _other_postcode(expr: pl.Expr) -> pl.Expr:
    """A postcode that is not a UK one, normalised the same way: upper case, single spaces, or null when blank."""
    text = expr.cast(pl.String).str.to_uppercase().str.replace_all(r"[^A-Z0-9 ]", "").str.replace_all(r"\s+", " ")
    text = text.str.strip_chars()
    return pl.when(text != "").then(text)


def one_character_repeated(text: pl.Expr, min_length: int = 2) -> pl.Expr:
    """Text of at least `min_length` characters, all one character ("0000000000", "XXXX")."""
    return (text.str.len_chars() >= min_length) & (text.str.strip_chars(text.str.slice(0, 1)) == "")


def _placeholder_text(expr: pl.Expr) -> pl.Expr:
    """A value that stands for "not known" (PLACEHOLDER_WORDS, or one character repeated)."""
    compact = expr.cast(pl.String).str.to_uppercase().str.replace_all(r"[^A-Z0-9]", "")
    return (compact.is_in(PLACEHOLDER_WORDS) | one_character_repeated(compact)).fill_null(False)


def placeholder_postcode(expr: pl.Expr) -> pl.Expr:
    """A postcode field holding no postcode: a placeholder word, one character repeated, or an NHS pseudo-postcode.
    A non-UK code of one digit repeated (an Australian 2222) is a real code: only letters or zeros repeated are not."""
    compact = expr.cast(pl.String).str.to_uppercase().str.replace_all(r"[^A-Z0-9]", "")
    placeholder = compact.is_in(PLACEHOLDER_WORDS) | (
        one_character_repeated(compact) & ~compact.str.slice(0, 1).str.contains(r"[1-9]"))
    return (placeholder | compact.str.starts_with(_PSEUDO_POSTCODE_OUTWARD)).fill_null(False)


def placeholder_email(expr: pl.Expr) -> pl.Expr:
    """An email field holding no address: a placeholder word before the @ ("none@none.com") or as the whole value."""
    return _placeholder_text(expr.cast(pl.String).str.split("@").list.first())


def placeholder_phone(expr: pl.Expr) -> pl.Expr:
    """A phone field holding no number: a placeholder word ("N/A"), or one digit repeated after its leading 0 or
    country code (00000000000, 07777777777)."""
    digits = expr.cast(pl.String).str.replace_all(r"\D", "")
    national = pl.when(digits.str.starts_with("44")).then(digits.str.slice(2)).otherwise(digits).str.strip_chars_start("0")
    repeated = one_character_repeated(national, 1) | (digits.str.len_chars() > 0) & (national == "")
    return (_placeholder_text(expr) | repeated.fill_null(False)).fill_null(False)


def extract_postcode(expr: pl.Expr) -> pl.Expr:
    found = expr.str.to_uppercase().str.extract_groups(_POSTCODE_IN_TEXT)
    return pl.when(found.struct.field("1").is_not_null()).then(
        found.struct.field("1") + " " + found.struct.field("2"))


def clean_nhs_number(expr: pl.Expr) -> pl.Expr:
    """10 digits with a valid modulus-11 check digit, or null."""
    digits = expr.str.replace_all(r"[\s-]", "")
    well_formed = digits.str.contains(r"^\d{10}$")
    weighted = sum(digits.str.slice(i, 1).cast(pl.Int32, strict=False) * (10 - i) for i in range(9))
    check = 11 - weighted % 11
    check = pl.when(check == 11).then(0).otherwise(check)
    last = digits.str.slice(9, 1).cast(pl.Int32, strict=False)
    # one digit repeated passes the check (0000000000, 1111111111) but is a placeholder
    return pl.when(well_formed & (check != 10) & (check == last) & ~one_character_repeated(digits)).then(digits).otherwise(None)


def clean_ni_number(expr: pl.Expr) -> pl.Expr:
    text = expr.str.to_uppercase().str.replace_all(r"\s", "")
    ok = text.str.contains(r"^[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]$") & ~text.str.slice(0, 2).is_in(_NI_PREFIX_BANNED)
    return pl.when(ok).then(text).otherwise(None)


def clean_upn(expr: pl.Expr) -> pl.Expr:
    """DfE UPN: check letter + 12 characters; check letter = Σ(value × weight 2..13) mod 23 over the 12."""
    text = expr.str.to_uppercase().str.replace_all(r"\s", "")
    shaped = text.str.contains(r"^[A-Z]\d{11}[0-9A-Z]$")
    weighted = sum(text.str.slice(i, 1).cast(pl.Int32, strict=False).fill_null(0) * (i + 1) for i in range(1, 13))
    letters = pl.lit(_UPN_LETTERS)
    expected = letters.str.slice((weighted % 23).cast(pl.Int64), 1)
    numeric_tail = text.str.slice(12, 1).str.contains(r"\d")
    valid = shaped & (~numeric_tail | (text.str.slice(0, 1) == expected))
    return pl.when(valid).then(text).otherwise(None)


def clean_pnc_id(expr: pl.Expr) -> pl.Expr:
    """PNC id as YY/NNNNNN + letter; a four-digit year is shortened."""
    text = expr.str.to_uppercase().str.replace_all(r"\s", "")
    parts = text.str.extract_groups(r"^(?:\d{2})?(\d{2})/0*(\d{1,6})([A-Z])$")
    return pl.when(parts.struct.field("1").is_not_null()).then(
        parts.struct.field("1") + "/" + parts.struct.field("2").str.zfill(6) + parts.struct.field("3"))


def clean_crn(expr: pl.Expr) -> pl.Expr:
    text = expr.str.to_uppercase().str.replace_all(r"\s", "")
    return pl.when(text.str.contains(r"^[A-Z]\d{6}$")).then(text)


def modulus_11(expr: pl.Expr) -> pl.Expr:
    """Digits whose last is the modulus-11 check digit of the others (weights n+1…2, as the NHS number); or null."""
    digits = expr.str.replace_all(r"[\s-]", "")
    length = digits.str.len_chars()
    weighted = pl.sum_horizontal([
        pl.when(pl.lit(i) < length - 1).then(
            digits.str.slice(i, 1).cast(pl.Int32, strict=False) * (length - i).cast(pl.Int32)).otherwise(0)
        for i in range(16)])
    check = 11 - weighted % 11
    check = pl.when(check == 11).then(0).otherwise(check)
    last = digits.str.slice(-1, 1).cast(pl.Int32, strict=False)
    ok = digits.str.contains(r"^\d{2,17}$") & (check != 10) & (check == last)
    return pl.when(ok).then(digits)


# the scope of a declared attribute's rows in staging.person_identifier (beside national and local identifiers)
ATTRIBUTE = "attribute"


def clean_attribute(expr: pl.Expr) -> pl.Expr:
    """A declared attribute (a place of birth, an occupation): accents and punctuation dropped, upper case,
    single spaces; null when nothing is left."""
    text = _latin(expr.cast(pl.String)).str.to_uppercase().str.replace_all(r"[^A-Z0-9]+", " ").str.strip_chars()
    return pl.when(text != "").then(text)


def clean_identifier(expr: pl.Expr, check: str | None = None, pattern: str | None = None) -> pl.Expr:
    """A declared identifier: upper case without spaces or hyphens, null when it fails its check or pattern."""
    text = expr.cast(pl.String).str.to_uppercase().str.replace_all(r"[\s-]", "")
    text = pl.when(text != "").then(text)
    checks = {"modulus_11": modulus_11, "nhs_number": clean_nhs_number, "ni_number": clean_ni_number,
              "upn": clean_upn, "pnc_id": clean_pnc_id, "crn": clean_crn}
    # one character repeated, six or more ("000000", "XXXXXXXX"), is a placeholder whatever its check says
    text = pl.when(~one_character_repeated(text, 6)).then(text)
    if check is not None:
        text = checks[check](text)
    if pattern is not None:
        text = pl.when(text.str.contains(pattern)).then(text)
    return text


def normalise_phone(expr: pl.Expr) -> pl.Expr:
    digits = expr.str.replace_all(r"[^\d+]", "")
    national = (
        pl.when(digits.str.starts_with("+44")).then("0" + digits.str.slice(3))
        .when(digits.str.starts_with("0044")).then("0" + digits.str.slice(4))
        .otherwise(digits)
    )
    return pl.when(national.str.contains(r"^0\d{9,10}$")).then("+44" + national.str.slice(1))


def standardise_address(expr: pl.Expr) -> pl.Expr:
    """Upper case, punctuation removed, abbreviations expanded (word by word)."""
    text = (
        expr.str.to_uppercase()
        .str.replace_all(r"(\d+)\s*/\s*(\d+)", "FLAT $1 $2")  # "2/14 MILL RD" → flat 2 at 14
        .str.replace_all(r"[^A-Z0-9\s]", " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )
    for short, full in _ABBREVIATIONS.items():  # whole words only; regex passes run in Rust, no per-row lists
        text = text.str.replace_all(rf"\b{short}\b", full)
    return pl.when(text == "").then(None).otherwise(text)


def address_tokens(std_expr: pl.Expr, postcode_expr: pl.Expr | None = None) -> pl.Expr:
    """Tokens of a standardised address, the postcode and town removed."""
    text = std_expr.str.replace_all(rf"\b{OUTWARD}\s*{INWARD}\b", "").str.replace_all(r"\bASHFORD VALE\b", "")
    return text.str.split(" ").list.eval(pl.element().filter(pl.element() != ""))


def _flag(flags: pl.Expr, condition: pl.Expr, name: str) -> pl.Expr:
    return pl.concat_list([flags, pl.when(condition).then(pl.lit(name)).otherwise(None)]).list.drop_nulls()


def _sex(expr: pl.Expr) -> pl.Expr:
    text = expr.str.strip_chars().str.to_uppercase()
    return (pl.when(text.is_in(["M", "MALE", "1", "MAN", "BOY"])).then(pl.lit("M"))
            .when(text.is_in(["F", "FEMALE", "2", "WOMAN", "GIRL"])).then(pl.lit("F")))


def _sex_from_title(expr: pl.Expr) -> pl.Expr:
    text = expr.str.strip_chars().str.to_lowercase().str.replace_all(r"\.", "")
    return pl.when(text.is_in(["mrs", "ms", "miss"])).then(pl.lit("F")).when(text == "mr").then(pl.lit("M"))


def standardise_person_records(frame: pl.DataFrame, as_of: dt.date, *,
                               date_of_birth_earliest: dt.date = dt.date(1900, 1, 1),
                               max_age_years: int | None = None) -> pl.DataFrame:
    """Fill the derived columns; null and flag invalid identifiers and impossible dates. Never drops a row.

    A postcode outside the UK pattern is kept (upper case, one space before a trailing 9AA when there is
    one) and flagged `postcode_not_uk`: it is still evidence two records share an address. A date of birth
    after `as_of` or before the bounds is nulled and flagged `date_of_birth_out_of_bounds`.
    """
    if max_age_years is not None:
        date_of_birth_earliest = max(date_of_birth_earliest, as_of.replace(year=as_of.year - max_age_years))
    identifiers = {"nhs_number": clean_nhs_number, "ni_number": clean_ni_number, "upn": clean_upn,
                   "pnc_id": clean_pnc_id, "crn": clean_crn}
    # placeholders ("N/A", "TBC", 0000000000) are cleared before anything reads them, and flagged
    placeholders = {"postcode": placeholder_postcode(pl.col("postcode")), "phone": placeholder_phone(pl.col("phone")),
                    "email": placeholder_email(pl.col("email")),
                    "nhs_number": one_character_repeated(pl.col("nhs_number").str.replace_all(r"[\s-]", ""), 10)
                    .fill_null(False)}
    frame = frame.with_columns(*[pl.when(p).then(None).otherwise(pl.col(n)).alias(n) for n, p in placeholders.items()],
                               *[p.alias(f"_{n}_placeholder") for n, p in placeholders.items()])
    # clean each value once into a temporary column, then flag where a given value did not survive
    out = frame.with_columns(
        clean_name(pl.col("first_name")).alias("first_name_std"),
        clean_name(pl.col("middle_names")).alias("middle_names_std"),
        clean_name(pl.col("last_name")).alias("last_name_std"),
        # a title says what the source did not: Mrs/Ms/Miss → F, Mr → M
        pl.coalesce(_sex(pl.col("sex")), _sex_from_title(pl.col("title"))).alias("sex"),
        standardise_address(pl.col("address_text")).alias("address_std"),
        normalise_postcode(pl.col("postcode")).alias("_postcode"),
        _other_postcode(pl.col("postcode")).alias("_postcode_other"),
        normalise_phone(pl.col("phone")).alias("_phone"),
        *[cleaner(pl.col(name)).alias(f"_{name}") for name, cleaner in identifiers.items()],
    )
    flags = pl.col("quality_flags").fill_null(pl.lit([], pl.List(pl.String)))
    impossible = pl.col("date_of_birth").is_not_null() & (
        (pl.col("date_of_birth") > pl.lit(as_of)) | (pl.col("date_of_birth") < pl.lit(date_of_birth_earliest)))
    placeholder = pl.col("date_of_birth").is_in(PLACEHOLDER_DATES)
    flags = _flag(flags, placeholder, "date_of_birth_placeholder")
    # a title alone is judged on the name as written: "عمر" (Omar) transliterates to "mr", and is no title
    written_in_latin = pl.col("first_name").str.contains(r"[A-Za-z]").fill_null(False)
    named_placeholder = (pl.col("first_name_std").str.contains(PLACEHOLDER_FORENAME).fill_null(False)
                         & (written_in_latin | ~pl.col("first_name_std").str.contains(_TITLE_ALONE)
                            .fill_null(False)))
    flags = _flag(flags, named_placeholder, "first_name_placeholder")
    flags = _flag(flags, impossible, "date_of_birth_out_of_bounds")
    flags = _flag(flags, pl.col("_postcode").is_null() & pl.col("_postcode_other").is_not_null(), "postcode_not_uk")
    for name in (*identifiers, "phone"):
        flags = _flag(flags, pl.col(name).is_not_null() & pl.col(f"_{name}").is_null(), f"{name}_invalid")
    for name in placeholders:
        flags = _flag(flags, pl.col(f"_{name}_placeholder"), f"{name}_placeholder")
    out = out.with_columns(
        flags.alias("quality_flags"),
        # a placeholder is flagged, not cleared: the person model decides what a flagged date is worth (clearing
        # these few dates upset its EM training on the demo city)
        pl.when(impossible).then(None).otherwise(pl.col("date_of_birth")).alias("date_of_birth"),
        pl.when(named_placeholder).then(None).otherwise(pl.col("first_name_std")).alias("first_name_std"),
        # a UK postcode in the address text beats a non-UK value in the postcode column
        pl.coalesce(pl.col("_postcode"), extract_postcode(pl.col("address_text")),
                    pl.col("_postcode_other")).alias("postcode"),
        pl.col("_phone").alias("phone"),
        pl.col("email").str.strip_chars().str.to_lowercase().alias("email"),
        *[pl.col(f"_{name}").alias(name) for name in identifiers],
    ).with_columns(
        formal_first_name(pl.col("first_name_std")).alias("first_name_formal"),
        address_tokens(pl.col("address_std")).alias("address_tokens"),
    )
    return out.drop([c for c in out.columns if c.startswith("_")])
