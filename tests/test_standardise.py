"""Standardisation, table-driven: literal inputs and the expected standard values."""

import datetime as dt

import polars as pl
import pytest

from sources import canonical
from sources._standardise import (
    address_tokens, clean_crn, clean_identifier, clean_name, clean_nhs_number, clean_ni_number, clean_pnc_id, clean_upn,
    extract_postcode, formal_first_name, normalise_phone, normalise_postcode, standardise_address,
    standardise_person_records,
)


def _apply(fn, values):
    return pl.DataFrame({"v": values}, schema={"v": pl.String}).select(fn(pl.col("v")).alias("v"))["v"].to_list()


@pytest.mark.parametrize("raw, expected", [
    ("  SMITH ", "smith"), ("O'Brien", "obrien"), ("Smith-Jones", "smith jones"), ("Mrs Jane", "jane"),
    ("Zoë", "zoe"), ("Dr. Who", "who"), ("", None), ("J.", "j"),
])
def test_clean_name(raw, expected):
    assert _apply(clean_name, [raw]) == [expected]


@pytest.mark.parametrize("raw, expected", [
    ("bill", "william"), ("billy joe", "william"), ("amelia", "amelia"), ("jim", "james"),
    # from the `nicknames` package's list: a nickname of one formal name only
    ("alec", "alexander"), ("amy", "amelia"),
    # a nickname of several formal names stays as it is; a formal name is never mapped to another
    ("bert", "bert"), ("alexander", "alexander"), ("allan", "allan"),
])
def test_formal_first_name(raw, expected):
    assert _apply(formal_first_name, [raw]) == [expected]


@pytest.mark.parametrize("raw, expected", [
    ("av3 4pl", "AV3 4PL"), ("M1 1AE", "M1 1AE"), ("m601nw", "M60 1NW"), ("CR2 6XH", "CR2 6XH"),
    ("DN55 1PT", "DN55 1PT"), ("W1A 1HQ", "W1A 1HQ"), ("EC1A 1BB", "EC1A 1BB"), ("AV3 4P", None),
    ("12345", None), ("AV3 4CL", "AV3 4CL"),
])
def test_postcode(raw, expected):
    assert _apply(normalise_postcode, [raw]) == [expected]


def test_postcode_from_free_text():
    assert _apply(extract_postcode, ["12 Mill Lane, Ashford Vale AV3 4PL", "NFA"]) == ["AV3 4PL", None]


@pytest.mark.parametrize("raw, expected", [
    ("9434765919", "9434765919"), ("943 476 5919", "9434765919"), ("943-476-5919", "9434765919"),
    ("9434765918", None),  # mistyped check digit
    ("9434765910", None), ("123456789", None),
    ("4010232137", "4010232137"),  # check digit 11 -> 0 is not this case; a second valid example
])
def test_nhs_number_modulus_11(raw, expected):
    assert _apply(clean_nhs_number, [raw]) == [expected]


def test_nhs_check_digit_of_10_is_invalid():
    # 1000000001..: body 100000000 -> sum 10 -> 11 - 10 = 1; find a body whose check would be 10
    body = next(b for b in range(100000000, 100001000)
                if 11 - sum(int(d) * w for d, w in zip(str(b), range(10, 1, -1))) % 11 == 10)
    assert _apply(clean_nhs_number, [f"{body}0"]) == [None]


@pytest.mark.parametrize("fn, raw, expected", [
    (clean_ni_number, "ab 12 34 56 c", "AB123456C"), (clean_ni_number, "QQ123456C", None),
    (clean_ni_number, "GB123456A", None), (clean_ni_number, "AB123456E", None),
    (clean_pnc_id, "12/345678a", "12/345678A"), (clean_pnc_id, "2012/345678A", "12/345678A"),
    (clean_pnc_id, "12345678A", None), (clean_crn, "x123456", "X123456"), (clean_crn, "X12345", None),
    (clean_upn, "A88129137039", None),
])
def test_identifier_formats(fn, raw, expected):
    assert _apply(fn, [raw]) == [expected]


def test_upn_check_letter_from_generator_is_accepted_and_a_wrong_letter_is_not():
    import numpy as np

    from sources.synthetic._population import upns

    good = upns(np.random.default_rng(1), 20).tolist()
    assert _apply(clean_upn, good) == good
    wrong = [("B" if u[0] != "B" else "C") + u[1:] for u in good]
    assert _apply(clean_upn, wrong) == [None] * 20


@pytest.mark.parametrize("raw, expected", [("07700 900123", "+447700900123"), ("+44 (0)1632 960000", None),
                                           ("01632 960000", "+441632960000"), ("12", None)])
def test_phone(raw, expected):
    assert _apply(normalise_phone, [raw]) == [expected]


@pytest.mark.parametrize("raw, std, tokens", [
    ("Flat 2, 14 Mill Rd", "FLAT 2 14 MILL ROAD", ["FLAT", "2", "14", "MILL", "ROAD"]),
    ("2/14 mill road", "FLAT 2 14 MILL ROAD", ["FLAT", "2", "14", "MILL", "ROAD"]),
    ("  14 SPRING DR , Ashford Vale AV6 0AU", "14 SPRING DRIVE ASHFORD VALE AV6 0AU", ["14", "SPRING", "DRIVE"]),
    ("Rose Cottage, 3 Church St", "ROSE COTTAGE 3 CHURCH STREET", ["ROSE", "COTTAGE", "3", "CHURCH", "STREET"]),
])
def test_address_cleaning_and_tokens(raw, std, tokens):
    frame = pl.DataFrame({"v": [raw]}).with_columns(standardise_address(pl.col("v")).alias("std"))
    assert frame["std"].to_list() == [std]
    assert frame.select(address_tokens(pl.col("std")))["std"].to_list() == [tokens]


def test_frame_function_flags_and_never_drops_rows():
    rows = pl.DataFrame([
        dict(source="s", record_id="1", first_name="Bill", last_name="SMITH", sex="Male",
             date_of_birth=dt.date(2030, 1, 1), nhs_number="9434765918", postcode="nonsense",
             address_text="12 Mill Ln AV3 4PL", phone="07700 900123"),
        dict(source="s", record_id="2", first_name=None, last_name=None, sex="2", date_of_birth=dt.date(1980, 5, 6),
             upn="bad", pnc_id="12/345678A"),
    ])
    out = standardise_person_records(canonical.conform(rows, canonical.PERSON_RECORD), as_of=dt.date(2026, 11, 1))
    assert out.height == 2
    a, b = out.sort("record_id").to_dicts()
    assert a["first_name"] == "Bill" and a["first_name_formal"] == "william" and a["sex"] == "M"
    assert a["date_of_birth"] is None and a["nhs_number"] is None
    assert set(a["quality_flags"]) == {"date_of_birth_out_of_bounds", "nhs_number_invalid", "postcode_not_uk"}
    assert a["postcode"] == "AV3 4PL"  # recovered from the address text
    assert a["phone"] == "+447700900123" and a["address_tokens"] == ["12", "MILL", "LANE"]
    assert b["sex"] == "F" and b["upn"] is None and b["pnc_id"] == "12/345678A"
    assert b["quality_flags"] == ["upn_invalid"]



def test_placeholders_are_cleared_and_flagged_not_taken_as_evidence():
    """"N/A", "TBC", an NHS pseudo-postcode, 0000000000, 00000000000 and none@none.com are what systems key when a
    value is not known: strangers would agree on them, so they are cleared and flagged <field>_placeholder. Real
    values beside them are untouched."""
    rows = pl.DataFrame([
        dict(source="s", record_id="1", postcode="N/A", nhs_number="0000000000", phone="00000000000",
             email="none@none.com"),
        dict(source="s", record_id="2", postcode="tbc", nhs_number="111 111 1111", phone="07777 777777",
             email="unknown"),
        dict(source="s", record_id="3", postcode="ZZ99 3VZ", nhs_number="9434765919", phone="n/a", email="x@y.org"),
        dict(source="s", record_id="4", postcode="XXXX", nhs_number=None, phone=None, email=None),
        dict(source="s", record_id="6", postcode="2222", nhs_number=None, phone=None, email=None),  # Australian
        dict(source="s", record_id="5", postcode="sw1a1aa", nhs_number="943 476 5919", phone="+44 7700 900123",
             email="Jo.Bloggs@Example.org"),
    ])
    out = standardise_person_records(canonical.conform(rows, canonical.PERSON_RECORD), as_of=dt.date(2026, 11, 1))
    by_id = {r["record_id"]: r for r in out.to_dicts()}
    for record in ("1", "2"):
        r = by_id[record]
        assert (r["postcode"], r["nhs_number"], r["phone"], r["email"]) == (None, None, None, None)
        assert set(r["quality_flags"]) == {"postcode_placeholder", "nhs_number_placeholder", "phone_placeholder",
                                           "email_placeholder"}
    assert by_id["3"]["postcode"] is None and by_id["4"]["postcode"] is None
    assert {"postcode_placeholder", "phone_placeholder"} <= set(by_id["3"]["quality_flags"])
    assert by_id["3"]["email"] == "x@y.org"
    assert by_id["6"]["postcode"] == "2222" and by_id["6"]["quality_flags"] == ["postcode_not_uk"]
    real = by_id["5"]
    assert (real["postcode"], real["nhs_number"], real["phone"], real["email"]) == (
        "SW1A 1AA", "9434765919", "+447700900123", "jo.bloggs@example.org")
    assert real["quality_flags"] == []


def test_a_declared_identifier_of_one_character_repeated_is_a_placeholder():
    values = ["000000", "XXXXXXXX", "AB1234", "11111", "1111111116"]
    cleaned = pl.DataFrame({"v": values}).select(clean_identifier(pl.col("v")))["v"].to_list()
    assert cleaned == [None, None, "AB1234", "11111", "1111111116"]  # five characters may be a real short id
    assert pl.DataFrame({"v": ["0000000000"]}).select(clean_identifier(pl.col("v"), "modulus_11"))["v"].to_list() == [None]

@pytest.mark.parametrize("first, std", [
    ("Baby", None), ("BABY OF SMITH", None), ("Unborn", None), ("Unknown", None), ("NK", None), ("Twin 1", None),
    ("Babette", "babette"), ("Nkechi", "nkechi"), ("Malena", "malena"),
    # a title alone is no forename; a title before a name is dropped; names that begin like a title are names
    ("Mr", None), ("SIR", None), ("Dr.", None), ("Lady", None), ("Sir William", "william"), ("Misha", "misha"),
    ("Drew", "drew"), ("Ladysmith", "ladysmith"),
])
def test_placeholder_forenames_are_cleared_for_matching_and_flagged(first, std):
    records = canonical.conform(pl.DataFrame({"source": ["health"], "record_id": ["h1"], "first_name": [first],
                                              "last_name": ["Smith"]}), canonical.PERSON_RECORD)
    out = standardise_person_records(records, as_of=dt.date(2026, 11, 1)).to_dicts()[0]
    assert out["first_name_std"] == std and out["first_name"] == first  # the original is kept
    assert ("first_name_placeholder" in out["quality_flags"]) == (std is None)


def test_a_name_written_in_another_script_is_not_taken_for_a_title():
    """عمر (Omar) transliterates to "mr": a title alone is judged on the name as written."""
    rows = pl.DataFrame([dict(source="s", record_id="1", first_name="عمر", last_name="Haddad"),
                         dict(source="s", record_id="2", first_name="Mr", last_name="Haddad"),
                         dict(source="s", record_id="3", first_name="Baby", last_name="Haddad")])
    out = standardise_person_records(canonical.conform(rows, canonical.PERSON_RECORD), as_of=dt.date(2026, 11, 1))
    by_id = {r["record_id"]: r for r in out.to_dicts()}
    assert by_id["1"]["first_name_std"] == "mr" and by_id["1"]["quality_flags"] == []
    assert by_id["2"]["first_name_std"] is None and by_id["2"]["quality_flags"] == ["first_name_placeholder"]
    assert by_id["3"]["first_name_std"] is None and by_id["3"]["quality_flags"] == ["first_name_placeholder"]
