"""Names in other scripts are transliterated for matching, the original kept (issue 13, defect 11); UTF-8 text
in a file read as cp1252 is refused, not staged garbled (defect 12)."""

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from sources._contract import load_contracts
from sources._readers import ExtractError, read_extract
from sources._standardise import clean_name, standardise_person_records

CONTRACTS = Path(__file__).resolve().parent.parent / "sources" / "contracts"


@pytest.mark.parametrize("name, matching", [
    ("Łukasz", "lukasz"),
    ("Zoë", "zoe"),
    ("Дмитрий", "dmitriy"),
    ("Μαρία", "maria"),
    ("王伟", "wangwei"),
    ("محمد", "mhmd"),
    ("Søren Ødegård", "soren odegard"),
    ("Mr John O'Neil", "john oneil"),
    ("Smith-Jones", "smith jones"),
])
def test_matching_names_are_transliterated(name, matching):
    assert pl.select(clean_name(pl.lit(name, pl.String))).item() == matching


def test_the_original_name_is_kept_beside_the_matching_form():
    records = pl.DataFrame({"source": ["police", "health"], "record_id": ["a", "b"],
                            "record_role": ["subject", "subject"], "first_name": ["Łukasz", "Lukasz"],
                            "last_name": ["Wójcik", "Wojcik"]})
    from sources import canonical

    out = standardise_person_records(canonical.conform(records, canonical.PERSON_RECORD), as_of=dt.date(2026, 11, 1))
    assert out["first_name"].to_list() == ["Łukasz", "Lukasz"]
    assert out["first_name_std"].to_list() == ["lukasz", "lukasz"]
    assert out["last_name_std"].to_list() == ["wojcik", "wojcik"]


POLICE_HEADER = ("NOMINAL_ID,SURNAME,FORENAMES,ALIASES,DOB,ALT_DOB,SEX,ADDRESS,PNC_ID,INCIDENT_TYPE,INCIDENT_DATE,"
                 "OIC_NAME,OIC_PHONE\n")


def _police(tmp_path, forenames: list[str]) -> Path:
    rows = [f"N{i:07d},SMITH,{name},,01/02/1990,,F,\"1 Mill Road, Ashford Vale AV1 1AA\",90/123456A,ASB,"
            f"01/03/2025,PC Officer,01632 960000\n" for i, name in enumerate(forenames, start=1)]
    path = tmp_path / "nominals_20261101.csv"
    # the agency exported UTF-8 although the contract says cp1252
    path.write_bytes((POLICE_HEADER + "".join(rows)).encode("utf-8"))
    return path


def test_utf8_in_a_cp1252_file_is_refused_naming_rows_not_values(tmp_path):
    path = _police(tmp_path, ["Amy", "Zoë", "Bea", "Chloë"])
    with pytest.raises(ExtractError) as caught:
        read_extract(path, load_contracts(CONTRACTS)["police"])
    message = str(caught.value)
    assert "looks like UTF-8 read as cp1252" in message and "rows (3, 5)" in message.replace("row(s)", "rows")
    assert "FORENAMES" in message and "Zo" not in message and "Chlo" not in message


def test_a_correct_cp1252_file_with_accents_is_read(tmp_path):
    path = _police(tmp_path, ["Amy"])
    path.write_bytes((POLICE_HEADER + "N0000001,SMITH,Zoë,,01/02/1990,,F,\"1 Mill Road\",90/123456A,ASB,01/03/2025,"
                      "PC Officer,01632 960000\n").encode("cp1252"))
    frame = read_extract(path, load_contracts(CONTRACTS)["police"])
    assert frame["FORENAMES"].to_list() == ["Zoë"]
