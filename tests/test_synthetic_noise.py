"""Each noise kind of the synthetic city, table-driven: literal input, the draws, the expected output."""

import datetime as dt

import numpy as np
import polars as pl
import pytest

from sources.synthetic import _noise as nz

D = dt.date


@pytest.mark.parametrize(
    "value, kind, where, letter, expected",
    [
        ("Smith", 0, 0.5, "x", "Smxith"),  # insertion
        ("Smith", 1, 0.5, "x", "Smth"),  # deletion
        ("Smith", 2, 0.5, "x", "Smtih"),  # transposition
        ("Smith", 3, 0.5, "x", "Smxth"),  # substitution
        ("Smith", 4, 0.5, "x", "Xmith"),  # first letter
        ("Al", 1, 0.5, "x", "Al"),  # too short to slip on
    ],
)
def test_typo(value, kind, where, letter, expected):
    out, changed = nz.typo(pl.Series([value]), np.array([True]), np.array([kind]), np.array([where]), np.array([letter]))
    assert out.to_list() == [expected] and bool(changed[0]) == (value != expected)


def test_typo_leaves_unmasked_rows_alone():
    out, changed = nz.typo(pl.Series(["Smith"]), np.array([False]), np.array([0]), np.array([0.5]), np.array(["x"]))
    assert out.to_list() == ["Smith"] and not changed[0]


@pytest.mark.parametrize(
    "value, pick, expected",
    [("Philippa", 0.0, "Pheelippa"), ("Stephenson", 0.0, "Stefenson"), ("Jackson", 0.0, "Jakson"),
     ("Ab", 0.0, "Ab")],  # no rule applies after the first letter: unchanged
)
def test_phonetic(value, pick, expected):
    out, changed = nz.phonetic(pl.Series([value]), np.array([True]), np.array([pick]))
    assert out.to_list() == [expected] and bool(changed[0]) == (value != expected)


@pytest.mark.parametrize(
    "value, kind, pick, expected",
    [
        ("William", "nickname", 0, "Bill"),
        ("William", "nickname", 1, "Will"),
        ("Yusuf", "transliteration", 0, "Yousef"),
        ("Muhammad", "transliteration", 0, "Mohammed"),
        ("Wang", "transliteration", 0, "Wong"),
        ("Zebedee", "nickname", 0, "Zebedee"),  # no variant known: unchanged
    ],
)
def test_name_variant(value, kind, pick, expected):
    out, changed = nz.name_variant(pl.Series([value]), np.array([True]), np.array([pick]), kind)
    assert out.to_list() == [expected] and bool(changed[0]) == (value != expected)


@pytest.mark.parametrize("value, expected", [("Łukasz", "Lukasz"), ("Zoë", "Zoe"), ("Ștefan", "Stefan"),
                                             ("Wiśniewska", "Wisniewska"), ("Smith", "Smith")])
def test_fold_diacritics(value, expected):
    assert nz.fold_diacritics(pl.Series([value])).to_list() == [expected]
    assert bool(nz.has_diacritics(pl.Series([value]))[0]) == (value != expected)


def test_case_whitespace():
    out, changed = nz.case_whitespace(pl.Series(["Smith", "Jones"]), np.array([True, False]))
    assert out.to_list() == ["  SMITH ", "Jones"] and changed.tolist() == [True, False]


@pytest.mark.parametrize(
    "dob, expected, changed",
    [(D(1990, 3, 7), D(1990, 7, 3), True), (D(1990, 3, 17), D(1990, 3, 17), False),  # day > 12: impossible
     (D(1990, 5, 5), D(1990, 5, 5), False)],
)
def test_dob_transposed(dob, expected, changed):
    out, c = nz.dob_transposed(pl.Series([dob]), np.array([True]))
    assert out.to_list() == [expected] and bool(c[0]) == changed


@pytest.mark.parametrize(
    "dob, position, digit, expected, changed",
    [(D(1990, 3, 17), 1, 9, D(1990, 3, 19), True),  # day's second digit
     (D(1990, 3, 17), 3, 9, D(1990, 9, 17), True),  # month's second digit
     (D(1990, 3, 17), 2, 5, D(1990, 3, 17), False),  # month 53 does not exist: left alone
     (D(1990, 3, 17), 6, 8, D(1998, 3, 17), True),  # the year's last digit
     (D(1990, 3, 17), 4, 2, D(1990, 3, 17), False)],  # 1290: before 1900, left alone
)
def test_dob_digit(dob, position, digit, expected, changed):
    out, c = nz.dob_digit(pl.Series([dob]), np.array([True]), np.array([position]), np.array([digit]))
    positions = [0, 1, 2, 3, 5, 6, 7]
    text = dob.strftime("%d%m%Y")
    typed = text[: positions[position]] + str(digit) + text[positions[position] + 1:]
    try:
        want = dt.datetime.strptime(typed, "%d%m%Y").date()
    except ValueError:
        want = dob
    want = want if want.year >= 1900 else dob
    assert (want, want != dob) == (expected, changed)
    assert out.to_list() == [want]
    assert bool(c[0]) == (want != dob)


def test_dob_year_month_and_default():
    dob = pl.Series([D(2000, 2, 29), D(1985, 12, 10), D(1970, 6, 15), D(1970, 1, 1)])
    out, c = nz.dob_year_off(dob, np.array([True, False, False, False]), np.array([True] * 4), 2026)
    assert out.to_list()[0] == D(2001, 2, 28) and c.tolist() == [True, False, False, False]
    out, c = nz.dob_month_off(dob, np.array([False, True, False, False]), np.array([True] * 4))
    assert out.to_list()[1] == D(1985, 11, 10)  # December has no next month in the year: one back
    out, c = nz.dob_default(dob, np.array([False, False, True, True]), np.array([False, False, True, False]))
    assert out.to_list()[2:] == [D(1900, 1, 1), D(1970, 1, 1)] and c.tolist() == [False, False, True, False]


def test_nhs_number_mistyped_invalid_or_still_valid():
    def valid(v: str) -> bool:
        body = np.array([int(d) for d in v[:9]])
        return int(nz.nhs_check_digit(body[None, :])[0]) == int(v[9])

    assert valid("9434765919")
    out, c = nz.nhs_mistyped(pl.Series(["9434765919", "9434765919", ""]), np.array([True, True, True]),
                             np.array([2, 2, 2]), np.array([True, False, True]))
    still_valid, invalid, blank = out.to_list()
    assert c.tolist() == [True, True, False] and blank == ""
    assert still_valid != "9434765919" and valid(still_valid)  # the dangerous kind: someone else's valid number
    assert invalid != "9434765919" and invalid[9] == "9"


# ----------------------------------------------------------------------------------------- addresses
def _address(kind: str, *, flat: bool = False, named: bool = False):
    """One record at one gazetteer address with only `kind` switched on (rate 1), the others off."""
    from dataclasses import fields, replace

    from sources.synthetic._extracts import NoiseConfig, NoiseLog, address_parts

    rates = {f.name: 0.0 for f in fields(NoiseConfig) if f.type in ("float", float)}
    noise = replace(NoiseConfig(), **{**rates, kind: 1.0})
    llpg = pl.DataFrame({"uprn": [100], "sao_text": ["FLAT 2" if flat else ""], "pao_start_number": [8],
                         "pao_text": ["Rose Cottage" if named else ""], "street_description": ["Oak Close"],
                         "locality": ["BROOKSIDE"], "postcode": ["AV3 4PL"], "neighbour_postcode": ["AV3 4PN"]})
    records = pl.DataFrame({"uprn_recorded": [100], "factor": [1.0], "address_outside": [False], "out_of_area": [0],
                            "address_missing": [False], "last_name": ["Smith"]})
    log = NoiseLog(1)
    out = address_parts(np.random.default_rng(1), records, llpg, noise, log)
    return out.row(0, named=True), {k for k, _, m in log.entries if m[0]}


@pytest.mark.parametrize(
    "kind, flat, named, check",
    [
        ("flat_described", True, False, lambda r: r["line1"] in ("First Floor Flat, 8 Oak Close", "8B Oak Close")),
        ("street_misspelt", False, False, lambda r: r["line1"].startswith("8 ") and r["line1"] != "8 Oak Close"),
        ("house_number_missing", False, False, lambda r: r["line1"] == "Oak Close"),
        ("building_name_only", False, True, lambda r: r["line1"] == "Rose Cottage" and r["line2"] is None),
        ("address_abbreviated", False, False, lambda r: r["line1"] == "8 Oak Cl"),
        ("postcode_typo", False, False, lambda r: r["postcode"] == "AV3 4LP"),
        ("postcode_wrong_unit", False, False, lambda r: r["postcode"] == "AV3 4PN"),
        ("postcode_missing", False, False, lambda r: r["postcode"] is None),
        ("locality_for_town", False, False, lambda r: r["town"] == "Brookside"),
    ],
)
def test_address_noise(kind, flat, named, check):
    row, logged = _address(kind, flat=flat, named=named)
    assert check(row), row
    assert kind in logged


def test_address_without_noise_is_the_gazetteer_address():
    row, logged = _address("typo")  # no address noise switched on
    assert (row["line1"], row["line2"], row["town"], row["postcode"]) == ("8 Oak Close", None, "Ashford Vale", "AV3 4PL")
    assert logged == set()
    row, _ = _address("typo", flat=True, named=True)
    assert row["line1"] == "Flat 2, Rose Cottage" and row["line2"] == "8 Oak Close"
