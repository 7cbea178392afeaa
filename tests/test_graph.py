"""The household graph built from hand-made staging rows, clusters and address matches."""

import datetime as dt

import polars as pl
import pytest

import warehouse
from sources import canonical
from warehouse._graph import assign_person_ids, build_graph


def _key(address_std, postcode):
    return f"address_key({address_std!r}, {postcode!r}, null)"


@pytest.fixture
def con():
    con = warehouse.connect(":memory:")
    records = pl.DataFrame(
        [
            # family at UPRN 100: mum, dad, child (child known to health and education)
            dict(source="health", record_id="h1", record_role="subject", address_std="1 MILL ROAD", postcode="AV1 1AA",
                 date_of_birth=dt.date(1985, 1, 2), extract_date=dt.date(2026, 11, 1)),
            dict(source="health", record_id="h2", record_role="subject", address_std="1 MILL ROAD", postcode="AV1 1AA",
                 date_of_birth=dt.date(1983, 5, 6), extract_date=dt.date(2026, 11, 1)),
            dict(source="health", record_id="h3", record_role="subject", address_std="1 MILL ROAD", postcode="AV1 1AA",
                 date_of_birth=dt.date(2012, 3, 4), extract_date=dt.date(2026, 11, 1)),
            dict(source="education", record_id="e1", record_role="subject", address_std="1 MILL RD", postcode="AV1 1AA",
                 date_of_birth=dt.date(2012, 3, 4), extract_date=dt.date(2026, 11, 1)),
            dict(source="education", record_id="e1-P1", record_role="parent_carer", address_std="1 MILL RD",
                 postcode="AV1 1AA", extract_date=dt.date(2026, 11, 1)),
            # two unrelated residents of a care home (UPRN 200)
            dict(source="health", record_id="h4", record_role="subject", address_std="OAK CARE HOME", postcode="AV2 2BB",
                 date_of_birth=dt.date(1930, 1, 1), extract_date=dt.date(2026, 11, 1)),
            dict(source="health", record_id="h5", record_role="subject", address_std="OAK CARE HOME", postcode="AV2 2BB",
                 date_of_birth=dt.date(1931, 1, 1), extract_date=dt.date(2026, 11, 1)),
            # the child's old address in police records is stale: moved out of UPRN 300 in 2024
            dict(source="police", record_id="p1", record_role="subject", address_std="9 OLD STREET", postcode="AV3 3CC",
                 date_of_birth=dt.date(1983, 5, 6), extract_date=dt.date(2023, 1, 1), address_to=dt.date(2024, 1, 1)),
        ]
    )
    con.register("_r", canonical.conform(records, canonical.PERSON_RECORD))
    con.execute("insert into staging.person_record select * from _r")
    con.execute(
        "insert into staging.stated_relationship values ('education', 'e1-P1', 'e1', 'parent_of')"
    )
    con.execute(
        """
        create table linkage.gazetteer as select * from (values
            (100, 1, '1 MILL ROAD', 'AV1 1AA', 'W01', 'Riverside', 'RD04', false),
            (200, 2, 'OAK CARE HOME', 'AV2 2BB', 'W02', 'Hillside', 'RI01', true),
            (300, 3, '9 OLD STREET', 'AV3 3CC', 'W03', 'Old Town', 'RD04', false)
        ) as t(uprn, usrn, address_std, postcode, ward_code, ward_name, classification_code, is_communal)
        """
    )
    con.execute(
        f"""
        create table linkage.address_match as select * from (values
            ({_key('1 MILL ROAD', 'AV1 1AA')}, 100, 'exact', 1.0),
            ({_key('1 MILL RD', 'AV1 1AA')}, 100, 'model', 0.99),
            ({_key('OAK CARE HOME', 'AV2 2BB')}, 200, 'exact', 1.0),
            ({_key('9 OLD STREET', 'AV3 3CC')}, 300, 'exact', 1.0)
        ) as t(address_key, uprn, match_method, match_score)
        """
    )
    con.execute(
        "create table linkage.source_trust as select * from (values ('health', 1), ('education', 2), ('police', 3)) "
        "as t(source, trust_rank)"
    )
    return con


CLUSTERS = pl.DataFrame(
    {
        "source": ["health", "health", "health", "education", "education", "health", "health", "police"],
        "record_id": ["h1", "h2", "h3", "e1", "e1-P1", "h4", "h5", "p1"],
        "cluster_id": ["mum", "dad", "kid", "kid", "mum", "res1", "res2", "dad"],
    }
)


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
