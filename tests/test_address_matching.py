"""Address → UPRN, table-driven on a hand-made gazetteer: right UPRN, or unmatched — never a wrong one."""

import polars as pl
import pytest

import warehouse
from linkage_models._address import load_gazetteer, match_addresses
from sources import canonical
from sources._standardise import standardise_person_records

GAZETTEER = """uprn,usrn,sao_text,pao_start_number,pao_text,street_description,locality,town_name,postcode,ward_code,ward_name,classification_code,is_communal
1001,1,,14,,Mill Road,,ASHFORD VALE,AV3 4PL,W1,Abbey,RD04,false
1002,1,FLAT 1,16,,Mill Road,,ASHFORD VALE,AV3 4PL,W1,Abbey,RD06,false
1003,1,FLAT 2,16,,Mill Road,,ASHFORD VALE,AV3 4PL,W1,Abbey,RD06,false
1004,2,,3,Rose Cottage,Church Street,,ASHFORD VALE,AV3 4PN,W1,Abbey,RD02,false
1005,3,,14,,Mill Road,,ASHFORD VALE,AV9 1AB,W9,Westcliffe,RD04,false
1006,4,,200,Oak Care Home,Station Road,,ASHFORD VALE,AV5 2CD,W5,Eastfield,RI01,true
1007,1,,18,,Mill Road,,ASHFORD VALE,AV3 4PL,W1,Abbey,RD04,false
1008,5,FLAT 8,8,,Oak Close,,ASHFORD VALE,AV3 4PQ,W1,Abbey,RD06,false
1009,5,FLAT 8,10,,Oak Close,,ASHFORD VALE,AV3 4PQ,W1,Abbey,RD06,false
"""

CASES = [
    ("exact", "14 Mill Road, Ashford Vale", "AV3 4PL", None, 1001),
    ("abbreviation and case", "  14 MILL RD ", "av3 4pl", None, 1001),
    ("postcode typo, same outward", "14 Mill Road", "AV3 4LP", None, 1001),
    ("missing postcode", "14 Mill Road", None, None, None),  # two 14 Mill Roads in town: ambiguous
    ("missing postcode, one such address in town", "18 Mill Road, Ashford Vale", None, None, 1007),
    ("missing postcode, a flat", "Flat 2, 16 Mill Road", None, None, 1003),
    ("missing postcode, a flat the gazetteer lacks", "Flat 3, 16 Mill Road", None, None, None),
    ("missing postcode, number on another street only", "3 Mill Road", None, None, None),
    ("flat 2", "Flat 2, 16 Mill Road", "AV3 4PL", None, 1003),
    ("flat slash form", "2/16 Mill Rd", "AV3 4PL", None, 1003),
    ("flat number not in gazetteer", "Flat 3, 16 Mill Road", "AV3 4PL", None, None),
    ("no flat for a flatted building", "16 Mill Road", "AV3 4PL", None, None),
    ("house name", "Rose Cottage, Ashford Vale", "AV3 4PN", None, 1004),
    ("same street elsewhere", "14 Mill Road", "AV9 1AB", None, 1005),
    ("care home", "Oak Care Home, Station Road", "AV5 2CD", None, 1006),
    ("source UPRN kept", "anything at all", None, 1007, 1007),
    ("unknown source UPRN falls back to the text", "18 Mill Road", "AV3 4PL", 999999, 1007),
    ("house number not in gazetteer", "99 Mill Road", "AV3 4PL", None, None),
    ("flat number equals house number", "Flat 8, 8 Oak Close", "AV3 4PQ", None, 1008),
    ("flat 8 of number 10", "Flat 8 10 Oak Close", "AV3 4PQ", None, 1009),
]


@pytest.fixture(scope="module")
def matched(tmp_path_factory):
    path = tmp_path_factory.mktemp("llpg") / "llpg.csv"
    path.write_text(GAZETTEER)
    con = warehouse.connect(":memory:")
    rows = pl.DataFrame(
        [dict(source="t", record_id=name, address_text=text, postcode=pc, uprn=uprn, first_name="A", last_name="B")
         for name, text, pc, uprn, _ in CASES]
        + [dict(source="t", record_id="nfa", address_text=None, no_fixed_abode=True, first_name="A", last_name="B")],
        schema_overrides={"uprn": pl.Int64},
    )
    import datetime as dt

    staged = standardise_person_records(canonical.conform(rows, canonical.PERSON_RECORD), as_of=dt.date(2026, 1, 1))
    con.register("_s", staged)
    con.execute("insert into staging.person_record select * from _s")
    load_gazetteer(con, path)
    match_addresses(con)
    result = con.sql(
        "select r.record_id, m.uprn, m.match_method from staging.person_record r left join linkage.address_match m "
        "on m.address_key = address_key(r.address_std, r.postcode, r.uprn)").pl()
    return {row["record_id"]: (row["uprn"], row["match_method"]) for row in result.to_dicts()}


@pytest.mark.parametrize("name, text, postcode, source_uprn, expected", CASES, ids=[c[0] for c in CASES])
def test_address_matches_expected_uprn_or_stays_unmatched(matched, name, text, postcode, source_uprn, expected):
    uprn, method = matched[name]
    assert uprn == expected, (name, method)


def test_no_fixed_abode_is_never_matched(matched):
    assert matched["nfa"] == (None, None)


def test_a_night_with_the_same_gazetteer_matches_only_new_addresses_and_agrees_with_a_full_match(tmp_path):
    import datetime as dt

    from linkage_models._address import gazetteer_basis, matched_basis

    path = tmp_path / "llpg.csv"
    path.write_text(GAZETTEER)
    contract = tmp_path / "contract.yaml"
    contract.write_text("name: test\n")
    con = warehouse.connect(":memory:")

    def stage(cases):
        rows = pl.DataFrame([dict(source="t", record_id=c[0], address_text=c[1], postcode=c[2], uprn=c[3],
                                  first_name="A", last_name="B") for c in cases], schema_overrides={"uprn": pl.Int64})
        staged = standardise_person_records(canonical.conform(rows, canonical.PERSON_RECORD), as_of=dt.date(2026, 1, 1))
        con.register("_s", staged)
        con.execute("delete from staging.person_record; insert into staging.person_record select * from _s")
        con.unregister("_s")

    def matches():
        return con.sql("select address_key, uprn, match_method, match_score from linkage.address_match "
                       "order by address_key").pl()

    basis = gazetteer_basis(contract, path)
    stage(CASES[:8])
    load_gazetteer(con, path)
    match_addresses(con, basis)
    assert matched_basis(con) == basis
    # a marker on a kept match shows which rows were reused, not matched again
    con.execute("update linkage.address_match set match_score = -1 where uprn = 1003")
    stage(CASES[2:])  # two addresses gone, eight new
    match_addresses(con, basis)
    night_two = matches()
    assert night_two.filter(pl.col("match_score") == -1).height == 1
    assert night_two.height == con.sql("select count(*) from linkage.source_address").fetchall()[0][0]
    # a full match of the same addresses gives the same answers (the marker aside)
    match_addresses(con)
    full = matches()
    assert night_two.with_columns(pl.col("match_score").replace(-1, None)).drop("match_score").equals(
        full.drop("match_score"))
    # another gazetteer file: everything is matched again
    path.write_text(GAZETTEER.replace("Rose Cottage", "Rose House"))
    assert gazetteer_basis(contract, path) != basis
