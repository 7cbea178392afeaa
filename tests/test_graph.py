"""The household graph built from hand-made staging rows, clusters and address matches."""

import datetime as dt

import polars as pl
import pytest

import warehouse
from tests._small_city import CLUSTERS, load_small_city
from linkage_models import assign_person_ids
from warehouse._graph import build_graph


@pytest.fixture
def con():
    con = warehouse.connect(":memory:")
    load_small_city(con)
    return con


def test_graph_households_relationships_and_stale_address(con):
    assign_person_ids(con, CLUSTERS, run_id="r1")
    counts = build_graph(con, run_id="r1", model_version="test", as_of=dt.date(2026, 11, 1))
    assert counts["person"] == 5
    members = con.sql(
        "select l.record_id, m.household_id, m.role, m.age from graph.household_member m "
        "join graph.record_link l using (person_id) where l.source = 'health' order by l.record_id"
    ).fetchall()
    by_record = {r[0]: r[1:] for r in members}
    # mum, dad (current address from health, not the stale police one) and child in one household
    assert by_record["h1"][0] == by_record["h2"][0] == by_record["h3"][0]
    assert by_record["h3"][1] == "child_or_young_person" and by_record["h3"][2] == 14
    assert by_record["h1"][1] == "adult"
    # care home residents are separate households
    assert by_record["h4"][0] != by_record["h5"][0]
    assert counts["household"] == 3
    # the stated parent_of relationship links mum's person to the child's person
    rel = con.sql("select relationship, evidence_records from graph.relationship").fetchall()
    assert rel == [("parent_of", 1)]
    wards = con.sql("select ward_name, members from graph.household order by members desc").fetchall()
    assert wards[0] == ("Riverside", 3)


def test_ids_survive_a_rerun_with_relabelled_clusters(con):
    assign_person_ids(con, CLUSTERS, run_id="r1")
    build_graph(con, run_id="r1", model_version="test", as_of=dt.date(2026, 11, 1))
    before = dict(con.sql("select source || record_id, person_id from graph.record_link").fetchall())
    households_before = set(con.sql("select household_id from graph.household").fetchall())
    relabelled = CLUSTERS.with_columns(("x" + pl.col("cluster_id").str.reverse()).alias("cluster_id"))
    assign_person_ids(con, relabelled, run_id="r2")
    build_graph(con, run_id="r2", model_version="test", as_of=dt.date(2026, 11, 1))
    after = dict(con.sql("select source || record_id, person_id from graph.record_link").fetchall())
    assert after == before
    assert set(con.sql("select household_id from graph.household").fetchall()) == households_before


def test_current_address_comes_from_the_better_corroborated_source_not_the_one_with_dates(con):
    """A GP register keeps an old address with its registration date; education, undated, has the new one.
    Education's addresses agree with another agency's for every person both know, health's for half:
    the person lives where education says, although only health's record carries a date (ADR 5)."""
    from sources import canonical

    kim = pl.DataFrame([
        dict(source="health", record_id="h6", record_role="subject", first_name="Kim", last_name="Lee",
             first_name_std="kim", last_name_std="lee", address_std="9 OLD STREET", postcode="AV3 3CC",
             date_of_birth=dt.date(2010, 7, 8), extract_date=dt.date(2026, 11, 1), address_from=dt.date(2019, 5, 1)),
        dict(source="education", record_id="e2", record_role="subject", first_name="Kim", last_name="Lee",
             first_name_std="kim", last_name_std="lee", address_std="1 MILL RD", postcode="AV1 1AA",
             date_of_birth=dt.date(2010, 7, 8), extract_date=dt.date(2026, 10, 1)),
    ])
    con.register("_kim", canonical.conform(kim, canonical.PERSON_RECORD))
    con.execute("insert into staging.person_record select * from _kim")
    clusters = pl.concat([CLUSTERS, pl.DataFrame({"source": ["health", "education"], "record_id": ["h6", "e2"],
                                                  "cluster_id": ["kim", "kim"]})])
    assign_person_ids(con, clusters, run_id="r1")
    build_graph(con, run_id="r1", model_version="test", as_of=dt.date(2026, 11, 1))
    current = dict(con.sql(
        "select l.record_id, a.uprn from graph.person_address a join graph.record_link l using (person_id) "
        "where a.is_current and l.source = 'health'").fetchall())
    assert current["h6"] == 100  # education's address, not health's dated one at UPRN 300
    assert current["h2"] == 100  # dad: health's open residence still beats police's closed one
