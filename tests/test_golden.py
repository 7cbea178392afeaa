"""Publishing: survivorship, atomic switch, rollback, failure before the switch, pseudonymisation."""

import json

import pytest

from tests._small_city import linked_small_city, publish_small_city
from warehouse._golden import PublishError, current_snapshot, rollback


@pytest.fixture
def con():
    return linked_small_city()


_publish = publish_small_city


def _person(con, source, record_id):
    return con.sql(
        "select p.* from golden.person p join golden.person_source_link l using (person_id) "
        f"where l.source = '{source}' and l.record_id = '{record_id}'"
    ).pl().to_dicts()[0]


def test_survivorship_picks_by_the_configured_rules(con, tmp_path):
    _publish(con, tmp_path)
    dad = _person(con, "police", "p1")
    # John (health, trust 1) beats Johnny (police) on a frequency tie
    assert (dad["first_name"], dad["first_name_source"]) == ("John", "health")
    assert dad["pnc_id"] == "12/345678A" and dad["pnc_id_source"] == "police"
    assert dad["agencies"] == ["health", "police"] and dad["source_records"] == 2
    # the current address comes from the fresh health record, not the stale police one
    assert dad["uprn"] == 100 and dad["ward_name"] == "Riverside"
    child = _person(con, "education", "e1")
    assert child["upn"] == "A123456789012" and child["nhs_number"] is None
    assert child["age"] == 14


def test_involvement_answers_who_else_is_working_with_the_family(con, tmp_path):
    _publish(con, tmp_path)
    rows = con.sql(
        "select h.household_id, i.agency, i.worker_role, i.is_open from golden.involvement i "
        "join golden.person p using (person_id) join golden.household h using (household_id) order by agency"
    ).fetchall()
    assert [(r[1], r[2], r[3]) for r in rows] == [
        ("Education", "designated teacher", True),
        ("Police", "officer in case", False),
    ]
    assert rows[0][0] == rows[1][0]  # same family


def test_snapshot_exports_parquet_with_manifest(con, tmp_path):
    result = _publish(con, tmp_path)
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["row_counts"]["person"] == 5
    assert set(manifest["files"]) >= {"golden.person", "golden.household", "golden.involvement",
                                      "golden.person_source_link", "pseudonymised.person", "analysts_database"}
    rows = con.sql(f"select count(*) from '{result.parquet_dir}/golden/person_source_link.parquet'").fetchall()[0][0]
    assert rows == 8


def test_failure_before_switch_keeps_published_snapshot(con, tmp_path):
    first = _publish(con, tmp_path)
    before = con.sql("select * from golden.person order by person_id").fetchall()
    con.execute("update staging.person_record set last_name = 'Changed' where record_id = 'h1'")
    with pytest.raises(PublishError):
        _publish(con, tmp_path, fail_before_switch=True)
    assert current_snapshot(con) == first.snapshot_id
    assert con.sql("select * from golden.person order by person_id").fetchall() == before


def test_rollback_returns_to_previous_snapshot(con, tmp_path):
    first = _publish(con, tmp_path)
    con.execute("update staging.person_record set last_name = 'Taylor', extract_date = date '2026-11-02' "
                "where record_id = 'h1'")
    second = _publish(con, tmp_path)
    assert _person(con, "health", "h1")["last_name"] == "Taylor"  # most recent surname wins
    assert rollback(con) == (second.snapshot_id, first.snapshot_id)
    assert _person(con, "health", "h1")["last_name"] == "Smith"
    assert current_snapshot(con) == first.snapshot_id


def test_pseudonymised_views_hold_no_direct_identifiers(con, tmp_path):
    _publish(con, tmp_path)
    identifiers = {str(v).lower() for row in con.sql(
        "select first_name, last_name, nhs_number, upn, pnc_id, phone, cast(date_of_birth as varchar), address, "
        "postcode, cast(uprn as varchar) from golden.person").fetchall() for v in row if v is not None}
    ids = {str(r[0]) for r in con.sql("select person_id from golden.person union select household_id from golden.household").fetchall()}
    for view in ("person", "household", "involvement"):
        frame = con.sql(f"select * from pseudonymised.{view}").pl()
        banned = {"first_name", "last_name", "date_of_birth", "nhs_number", "address", "postcode", "uprn",
                  "person_id", "household_id", "worker_name", "worker_phone", "worker_email", "phone"}
        assert not banned & set(frame.columns), view
        values = {str(v).lower() for col in frame.columns for v in frame[col].to_list() if v is not None}
        assert not identifiers & values, view
        keys = {str(v) for col in frame.columns if col.endswith("_key") for v in frame[col].to_list()}
        assert keys and not ids & keys, view
    bands = {r[0] for r in con.sql("select age_band from pseudonymised.person").fetchall()}
    assert "11-15" in bands and "00-04" not in bands  # zero-padded bands sort by age
