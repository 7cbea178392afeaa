"""A hand-made, fully known small warehouse: staging rows, clusters, address matches, gazetteer."""

import datetime as dt

import polars as pl

from sources import canonical

def _key(address_std, postcode):
    return f"address_key({address_std!r}, {postcode!r}, null)"


def load_small_city(con):
    records = pl.DataFrame(
        [
            # family at UPRN 100: mum, dad, child (child known to health and education)
            dict(source="health", record_id="h1", record_role="subject", first_name="Jane", last_name="Smith",
                 first_name_std="jane", last_name_std="smith", nhs_number="9434765919", sex="F", address_std="1 MILL ROAD", postcode="AV1 1AA",
                 date_of_birth=dt.date(1985, 1, 2), extract_date=dt.date(2026, 11, 1)),
            dict(source="health", record_id="h2", record_role="subject", first_name="John", last_name="Smith",
                 first_name_std="john", last_name_std="smith", sex="M", address_std="1 MILL ROAD", postcode="AV1 1AA",
                 date_of_birth=dt.date(1983, 5, 6), extract_date=dt.date(2026, 11, 1)),
            dict(source="health", record_id="h3", record_role="subject", first_name="Amy", last_name="Smith",
                 first_name_std="amy", last_name_std="smith", sex="F", address_std="1 MILL ROAD", postcode="AV1 1AA",
                 date_of_birth=dt.date(2012, 3, 4), extract_date=dt.date(2026, 11, 1)),
            dict(source="education", record_id="e1", record_role="subject", first_name="Amy", last_name="Jones",
                 first_name_std="amy", last_name_std="jones", upn="A123456789012", address_std="1 MILL RD", postcode="AV1 1AA",
                 date_of_birth=dt.date(2012, 3, 4), extract_date=dt.date(2026, 11, 1)),
            dict(source="education", record_id="e1-P1", record_role="parent_carer", first_name="Jane",
                 last_name="Jones", first_name_std="jane", last_name_std="jones", phone="+447700900123", address_std="1 MILL RD",
                 postcode="AV1 1AA", extract_date=dt.date(2026, 11, 1)),
            # two unrelated residents of a care home (UPRN 200)
            dict(source="health", record_id="h4", record_role="subject", first_name="Ada", last_name="Brown", address_std="OAK CARE HOME", postcode="AV2 2BB",
                 date_of_birth=dt.date(1930, 1, 1), extract_date=dt.date(2026, 11, 1)),
            dict(source="health", record_id="h5", record_role="subject", first_name="Bob", last_name="White", address_std="OAK CARE HOME", postcode="AV2 2BB",
                 date_of_birth=dt.date(1931, 1, 1), extract_date=dt.date(2026, 11, 1)),
            # the child's old address in police records is stale: moved out of UPRN 300 in 2024
            dict(source="police", record_id="p1", record_role="subject", first_name="Johnny", last_name="Smith",
                 first_name_std="johnny", last_name_std="smith", pnc_id="12/345678A", address_std="9 OLD STREET", postcode="AV3 3CC",
                 date_of_birth=dt.date(1983, 5, 6), extract_date=dt.date(2023, 1, 1), address_to=dt.date(2024, 1, 1)),
        ]
    )
    con.register("_r", canonical.conform(records, canonical.PERSON_RECORD))
    con.execute("insert into staging.person_record select * from _r")
    con.execute(
        """
        insert into staging.involvement values
            ('education', 'e1', 'Education', 'Ashford Primary', 'Ms Teacher', 'designated teacher',
             null, 'teacher@example.org', date '2020-09-01', null),
            ('police', 'p1', 'Police', 'Neighbourhood policing', 'PC Officer', 'officer in case',
             '+441234567890', null, date '2022-06-01', date '2023-01-01')
        """
    )
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




PSEUDONYMISATION_KEY = b"test-key-not-a-secret"


def linked_small_city():
    """The small city in an in-memory warehouse, linked (CLUSTERS) and its graph built: ready to publish."""
    import warehouse
    from linkage_models import assign_person_ids
    from warehouse._graph import build_graph

    con = warehouse.connect(":memory:")
    load_small_city(con)
    assign_person_ids(con, CLUSTERS, run_id="r1")
    build_graph(con, run_id="r1", model_version="m1", as_of=dt.date(2026, 11, 1))
    return con


def publish_small_city(con, snapshots, **kw):
    from warehouse._golden import publish_snapshot

    return publish_snapshot(con, run_id="r1", model_version="m1", as_of=dt.date(2026, 11, 1),
                            snapshots_dir=snapshots, pseudonymisation_key=PSEUDONYMISATION_KEY,
                            retention_days=30, **kw)
