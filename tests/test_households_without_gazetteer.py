"""Households when there is no gazetteer (docs/adr/0005-households.md): a source's own UPRN is the home, and an
address given without a postcode is a home by its text when it names a house number. With a gazetteer, a UPRN
it does not know is still not trusted and an address it could not match without a postcode still places no one.
The run report says when there was no gazetteer (issue 12).

Each case runs the real address matching (load_gazetteer, match_addresses) and the graph SQL on literal records."""

import datetime as dt

import polars as pl
import pytest
from typer.testing import CliRunner

import warehouse
from linkage_models import assign_person_ids
from linkage_models._address import load_gazetteer, match_addresses
from pipelines.cli import app
from sources import canonical
from sources._standardise import standardise_person_records
from warehouse._graph import build_graph

AS_OF = dt.date(2026, 11, 1)

GAZETTEER = """uprn,usrn,sao_text,pao_start_number,pao_text,street_description,locality,town_name,postcode,ward_code,ward_name,classification_code,is_communal
1001,1,,14,,Mill Road,,ASHFORD VALE,AV3 4PL,W1,Abbey,RD04,false
1005,3,,14,,Mill Road,,ASHFORD VALE,AV9 1AB,W9,Westcliffe,RD04,false
1007,1,,18,,Mill Road,,ASHFORD VALE,AV3 4PL,W1,Abbey,RD04,false
"""


def _link(con, rows: list[dict], gazetteer=None, run_id: str = "r1") -> None:
    """Stage `rows` (one record per person, person = record_id), match their addresses against `gazetteer` (a CSV
    path, or None for no gazetteer) and build the graph in the warehouse `con`."""
    frame = pl.DataFrame(
        [dict(source=r.get("source", "health"), record_id=r["id"], record_role="subject", first_name=r["id"],
              last_name="Test", address_text=r.get("address"), postcode=r.get("postcode"), uprn=r.get("uprn"),
              extract_date=AS_OF) for r in rows],
        schema_overrides={"uprn": pl.Int64, "address_text": pl.String, "postcode": pl.String},
    )
    staged = standardise_person_records(canonical.conform(frame, canonical.PERSON_RECORD), as_of=AS_OF)
    con.register("_staged", staged)
    con.execute("insert into staging.person_record select * from _staged")
    con.execute("create table linkage.source_trust as select * from (values ('health', 1), ('housing', 2)) "
                "as t(source, trust_rank)")
    load_gazetteer(con, gazetteer)
    match_addresses(con)
    clusters = staged.select("source", "record_id", pl.col("record_id").alias("cluster_id"))
    assign_person_ids(con, clusters, run_id=run_id)
    build_graph(con, run_id=run_id, model_version="test", as_of=AS_OF)


def _households(rows: list[dict], gazetteer=None) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """`_link` in memory. Returns {record_id: (household_id, household uprn)} for the persons placed in a household,
    and {record_id: (uprn, match_method)} from linkage.address_match."""
    con = warehouse.connect(":memory:")
    _link(con, rows, gazetteer)
    placed = con.sql(
        "select l.record_id, m.household_id, h.uprn from graph.household_member as m "
        "join graph.record_link as l using (person_id) join graph.household as h using (household_id)").fetchall()
    matches = con.sql(
        "select r.record_id, m.uprn, m.match_method from staging.person_record as r "
        "join linkage.address_match as m on m.address_key = address_key(r.address_std, r.postcode, r.uprn)").fetchall()
    return {r[0]: r[1:] for r in placed}, {r[0]: r[1:] for r in matches}


@pytest.fixture
def gazetteer(tmp_path):
    path = tmp_path / "llpg.csv"
    path.write_text(GAZETTEER)
    return path


def test_no_gazetteer_source_uprns_are_the_homes():
    placed, matches = _households([
        dict(id="mum", uprn=5550001),
        dict(id="child", uprn=5550001, source="housing"),
        dict(id="neighbour", uprn=5550002),
        dict(id="no_address"),
    ])
    assert matches["mum"] == (5550001, "source_uprn_unverified")
    assert matches["neighbour"] == (5550002, "source_uprn_unverified")
    # the two at one UPRN share a household that carries it; the neighbour has their own
    assert placed["mum"] == placed["child"] == (placed["mum"][0], 5550001)
    assert placed["neighbour"][1] == 5550002 and placed["neighbour"][0] != placed["mum"][0]
    assert "no_address" not in placed
    assert len({household for household, _ in placed.values()}) == 2


def test_no_gazetteer_addresses_without_a_postcode_form_households():
    placed, matches = _households([
        dict(id="mum", address="14 Mill Road"),
        dict(id="child", address="14 MILL RD", source="housing"),  # the same address, written another way
        dict(id="neighbour", address="16 Mill Road"),
        dict(id="flat", address="29F Station Road"),
        dict(id="town_only", address="Ashford Vale"),  # no house number: names no one home
        dict(id="number_only", address="14"),
        dict(id="with_postcode", address="14 Mill Road", postcode="AV3 4PL"),
    ])
    assert all(uprn is None for uprn, _ in matches.values())
    assert placed["mum"][0] == placed["child"][0]
    assert placed["neighbour"][0] != placed["mum"][0]
    assert "flat" in placed
    assert "town_only" not in placed and "number_only" not in placed
    # with a postcode the home is still address and postcode: not the postcode-less "14 Mill Road"
    assert placed["with_postcode"][0] != placed["mum"][0]
    assert all(uprn is None for _, uprn in placed.values())
    assert len({household for household, _ in placed.values()}) == 4


def test_no_gazetteer_addresses_with_a_postcode_still_need_it_to_match():
    placed, _ = _households([
        dict(id="a", address="14 Mill Road", postcode="AV3 4PL"),
        dict(id="b", address="14 Mill Road", postcode="AV3 4PL", source="housing"),
        dict(id="c", address="14 Mill Road", postcode="AV9 1AB"),  # the other Mill Road, across town
    ])
    assert placed["a"][0] == placed["b"][0] != placed["c"][0]


def test_with_a_gazetteer_an_unknown_source_uprn_is_not_used(gazetteer):
    placed, matches = _households([
        dict(id="known", uprn=1007),
        dict(id="unknown", uprn=999999),  # not in the gazetteer, nothing else to go on
        dict(id="unknown_with_text", uprn=999999, address="18 Mill Road", postcode="AV3 4PL", source="housing"),
    ], gazetteer)
    assert matches["known"] == (1007, "source_uprn")
    assert matches["unknown"] == (None, "unmatched")
    assert matches["unknown_with_text"] == (1007, "rules")  # matched by its text, not its UPRN
    assert "unknown" not in placed
    assert placed["known"] == placed["unknown_with_text"] == (placed["known"][0], 1007)
    assert all(uprn != 999999 for _, uprn in placed.values())


def test_with_a_gazetteer_an_address_without_a_postcode_it_cannot_match_places_no_one(gazetteer):
    placed, matches = _households([
        dict(id="ambiguous", address="14 Mill Road"),  # two 14 Mill Roads in the gazetteer
        dict(id="ambiguous_too", address="14 Mill Road", source="housing"),
        dict(id="unique", address="18 Mill Road"),
    ], gazetteer)
    assert matches["ambiguous"] == (None, "unmatched")
    assert "ambiguous" not in placed and "ambiguous_too" not in placed
    assert placed["unique"][1] == 1007


def _report(tmp_path, gazetteer=None) -> str:
    """The HTML report of a link run (a real warehouse file, `familylink report`) over a family at a source's UPRN
    and a neighbour whose address the gazetteer, when there is one, knows."""
    data = tmp_path / "data"
    con = warehouse.connect(data / "warehouse" / "familylink.duckdb")
    try:
        with warehouse.audited_run(con, "link") as run_id:
            _link(con, [dict(id="mum", uprn=1001), dict(id="child", uprn=1001, source="housing"),
                        dict(id="neighbour", address="18 Mill Road", postcode="AV3 4PL")], gazetteer, run_id)
    finally:
        con.close()
    result = CliRunner().invoke(app, ["report", "--data-dir", str(data), "--run-id", run_id])
    assert result.exit_code == 0, result.output
    return (data / "reports" / run_id / "report.html").read_text(encoding="utf-8")


def _flat(html: str) -> str:
    return " ".join(html.split())


def test_the_report_says_there_was_no_gazetteer_and_shows_no_match_rate(tmp_path):
    html = _flat(_report(tmp_path))
    assert ("No gazetteer was loaded for this run (none was found, or it was empty), so no address was matched to "
            "the council's gazetteer. UPRNs come only from the sources and are unverified; households are formed "
            "from those UPRNs, else from the normalised address and postcode.") in html
    # not a 0% match rate, which would read as a matching failure
    assert '<b id="uprn-match-rate">not applicable (no gazetteer)</b>' in html
    assert "matched to a UPRN</th>" not in html
    assert "with a UPRN (a source's, unverified)<b>1</b>" in html


def test_the_report_of_a_run_with_a_gazetteer_does_not_say_so(tmp_path, gazetteer):
    html = _flat(_report(tmp_path, gazetteer))
    assert "No gazetteer" not in html and "no gazetteer" not in html
    assert '<b id="uprn-match-rate">100.0%</b>' in html
