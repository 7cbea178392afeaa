"""The Spark engine (`engine: spark`): the link stage on Spark gives the pairs, clusters, stable ids and
households DuckDB gives, on `local[2]` and on a standalone master and worker started on loopback.

One tiny trained city for the module (about 1,500 records). JVM start-ups are few: one SparkSession on
`local[2]` for the local tests, then one standalone cluster (master, worker, one executor). Java comes from
Debian's packages (`make system-deps`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

from linkage_models._engine import SparkOptions, spark_settings, spark_sql, spark_session
from pipelines.settings import Settings
from tests._ports import free_port

# C1 only: the JIT's slower second tier never pays for itself on runs this small (halves the first predict)
_QUICK_JVM = {"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1",
              "spark.executor.extraJavaOptions": "-XX:TieredStopAtLevel=1"}


# ---------------------------------------------------------------------------------- translation, no JVM
def test_duckdb_functions_of_the_model_become_their_spark_equivalents():
    arrays = frozenset({"address_tokens_l", "address_tokens_r"})
    assert spark_sql("jaro_winkler_similarity(first_name_std_l, first_name_std_r) >= 0.92") == \
        "DUCKDB_JARO_WINKLER_SIMILARITY(first_name_std_l, first_name_std_r) >= 0.92"  # DuckDB's, on Spark
    assert spark_sql("10 * len(list_intersect(address_tokens_l, address_tokens_r)) >= "
                     "6 * len(list_distinct(list_concat(address_tokens_l, address_tokens_r)))", arrays) == \
        ("10 * SIZE(ARRAY_INTERSECT(address_tokens_l, address_tokens_r)) >= "
         "6 * SIZE(ARRAY_DISTINCT(CONCAT(address_tokens_l, address_tokens_r)))")
    assert spark_sql("len(address_tokens_l) >= 2", arrays) == "SIZE(address_tokens_l) >= 2"
    assert spark_sql("len(first_name_std_l) >= 2", arrays) == "LENGTH(first_name_std_l) >= 2"  # a string
    # DuckDB's date_diff('day', start, end) is end - start: Spark's datediff(end, start)
    assert spark_sql("abs(date_diff('day', date_of_birth_l, date_of_birth_r)) <= 366") == \
        "ABS(DATEDIFF(date_of_birth_r, date_of_birth_l)) <= 366"
    assert spark_sql('"sex_l" IS NULL OR "sex_r" IS NULL') == "`sex_l` IS NULL OR `sex_r` IS NULL"


def test_the_graph_scripts_become_self_contained_spark_queries():
    """What the graph's SQL files need beyond the model's rules: DuckDB's year boundaries, a sorted distinct
    list, getvariable, the warehouse's own macros, and schema-qualified tables read as Spark views."""
    import datetime as dt

    from linkage_models._engine import _portable, _reads, _statements, _warehouse_macros, spark_query

    # date_diff('year') counts year boundaries on DuckDB (Spark's counts whole years): 2025-12-31 → 2026-01-01 is 1
    assert spark_query("select date_diff('year', dob, as_of) - 1 as age from t") == \
        "SELECT (YEAR(as_of) - YEAR(dob)) - 1 AS age FROM t"
    assert spark_query("select list(distinct source order by source) as l from t") == \
        "SELECT ARRAY_SORT(COLLECT_SET(source)) AS l FROM t"
    con = duckdb.connect()
    con.execute("create macro key3(a, b) as md5(coalesce(a, '') || '|' || b)")
    ((target, query),) = _statements(
        "create or replace table graph.x as with links as (select * from linkage.pairs) "
        "select key3(links.name, 'k') as k, getvariable('as_of')::date as d, getvariable('run') as r "
        "from links join graph.y using (id)")
    assert (target, sorted(_reads(query))) == ("graph.x", ["graph.y", "linkage.pairs"])  # not the CTE
    portable = _portable(query, {"as_of": dt.date(2026, 11, 1), "run": "r1"}, _warehouse_macros(con),
                         {"linkage.pairs": "linkage__pairs", "graph.y": "graph__y"})
    assert spark_query(portable.sql(dialect="duckdb")) == (
        "WITH links AS (SELECT * FROM linkage__pairs) SELECT (MD5(((COALESCE(links.name, '') || '|') || 'k'))) AS k, "
        "CAST(CAST('2026-11-01' AS DATE) AS DATE) AS d, 'r1' AS r FROM links JOIN graph__y USING (id)")


def test_the_spark_model_is_the_same_model_in_another_dialect():
    settings = {"sql_dialect": "duckdb", "probability_two_random_records_match": 0.01,
                "blocking_rules_to_generate_predictions": [{"blocking_rule": 'l."phone" = r."phone"',
                                                            "sql_dialect": "duckdb"}],
                "comparisons": [{"output_column_name": "forename", "comparison_levels": [
                    {"sql_condition": "first_name_std_l is null", "is_null_level": True},
                    {"sql_condition": "jaro_winkler_similarity(first_name_std_l, first_name_std_r) >= 0.9",
                     "m_probability": 0.7, "u_probability": 0.01, "label_for_charts": "close"},
                    {"sql_condition": "ELSE", "m_probability": 0.3, "u_probability": 0.99}]}]}
    spark = spark_settings(settings, frozenset())
    assert spark["sql_dialect"] == "spark"
    assert spark["blocking_rules_to_generate_predictions"][0]["blocking_rule"] == "l.`phone` = r.`phone`"
    levels = spark["comparisons"][0]["comparison_levels"]
    assert levels[1]["sql_condition"].startswith("DUCKDB_JARO_WINKLER_SIMILARITY(")
    assert [(l.get("m_probability"), l.get("label_for_charts")) for l in levels] == \
        [(l.get("m_probability"), l.get("label_for_charts")) for l in settings["comparisons"][0]["comparison_levels"]]
    assert settings["comparisons"][0]["comparison_levels"][1]["sql_condition"].startswith("jaro_winkler_similarity")


def test_spark_settings_come_from_the_settings_file_and_environment(tmp_path):
    from pipelines.settings import SettingsError, load_settings
    from linkage_models._engine import spark_options

    settings = load_settings({"FAMILYLINK_ENGINE": "spark", "FAMILYLINK_SPARK_MASTER": "spark://10.0.0.1:7077",
                              "FAMILYLINK_SPARK_CONF": '{"spark.executor.cores": "4"}',
                              "FAMILYLINK_SPARK_SHUFFLE_PARTITIONS": "400", "FAMILYLINK_DATA_DIR": str(tmp_path)},
                             settings_file=tmp_path / "none.yaml")
    options = spark_options(settings)
    assert (options.master, options.shuffle_partitions, options.conf) == \
        ("spark://10.0.0.1:7077", 400, {"spark.executor.cores": "4"})
    assert options.work_dir == tmp_path / "spark"  # checkpoints under the data folder by default
    with pytest.raises(SettingsError, match="spark_conf"):
        load_settings({"FAMILYLINK_SPARK_CONF": "executor.cores=4"}, settings_file=tmp_path / "none.yaml")


def _bench_spark():
    import importlib.util

    path = Path(__file__).parent.parent / "benchmarks" / "bench_spark.py"
    spec = importlib.util.spec_from_file_location("bench_spark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _warehouse(path: Path, people: list[tuple]) -> Path:
    """The four tables the benchmark compares, rows in the order given (engines write them in their own)."""
    con = duckdb.connect(str(path))
    con.execute("create schema linkage; create schema graph")
    con.execute("create table linkage.person_cluster (source varchar, record_id varchar, person_id bigint)")
    con.executemany("insert into linkage.person_cluster values (?, ?, ?)", people)
    con.execute("create table graph.household_member as select distinct person_id, person_id // 2 as household_id "
                "from linkage.person_cluster")
    con.execute("create table linkage.person_pairs as select a.source || ':' || a.record_id as unique_id_l, "
                "b.source || ':' || b.record_id as unique_id_r, 10.0 as match_weight from linkage.person_cluster a "
                "join linkage.person_cluster b on a.person_id = b.person_id and a.record_id < b.record_id")
    con.execute("create table linkage.overmerge_flag (source varchar, record_id varchar, person_id bigint, "
                "reason varchar, action varchar)")
    con.close()
    return path


def test_the_benchmark_compares_the_engines_ids_row_by_row_whatever_the_row_order(tmp_path):
    """The engines write the same rows in different orders. Session 5's digest (md5 of string_agg ordered by
    `all`, which DuckDB 2.0 expands to one aggregate per column) depended on that order and reported person
    ids differing at 100k records where every row was the same."""
    compare = _bench_spark().compare_link_outputs
    people = [("social_care", f"r{i}", i // 3) for i in range(30)]
    first = _warehouse(tmp_path / "first.duckdb", people)
    assert compare(first, _warehouse(tmp_path / "reordered.duckdb", people[::-1]))["same"]
    moved = people[:-1] + [("social_care", "r29", 8)]  # one record in another person
    differs = compare(first, _warehouse(tmp_path / "moved.duckdb", moved))
    assert not differs["same"]
    assert (differs["person ids only in first"], differs["person ids only in second"]) == (1, 1)


def test_the_benchmarks_sizing_scales_with_the_measured_growth_only_at_similar_loads():
    sizing = _bench_spark().sizing
    small = {"phase": "link_all on spark", "seconds": 100.0, "records": 100_000, "load_average": [3.0, 4.0]}
    large = {"phase": "link_all on spark", "seconds": 1_500.0, "records": 1_000_000, "load_average": [4.0, 5.0]}
    measured = sizing([large], [small])
    assert measured["spark exponent"].startswith("1.18 (measured")  # 15× the time for 10× the records
    assert measured["spark at 10M"] == pytest.approx(1_500 * 2 * 10 ** 1.176 / 3600, rel=0.01)
    busy = sizing([{**large, "load_average": [12.0, 12.0]}], [small])  # the load, not the city, set that ratio
    assert busy["spark exponent"].startswith("1.20 (assumed: sizes measured at load 4 and 12")


# ------------------------------------------------------------------------------------ on a real JVM
@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Settings:
    from tests._city import trained_city

    return trained_city(tmp_path_factory.mktemp("spark-city"), people=500, seed=3)


def _link(city: Settings, folder: Path, **changes) -> dict:
    """The link stage on a copy of the city's warehouse and models; what it wrote, read back."""
    from linkage_models.pipeline import link_all

    shutil.copytree(city.data_dir, folder)
    settings = city.with_overrides(data_dir=folder, spark_checkpoint_dir=folder.parent / f"{folder.name}-spark",
                                   **changes)
    con = duckdb.connect(str(settings.warehouse))
    try:
        summary = link_all(con, settings, "run-1")
        tables = {
            "person_cluster": "select source, record_id, person_id, cluster_size from linkage.person_cluster",
            "pairs": "select unique_id_l, unique_id_r, round(match_weight, 9) from linkage.person_pairs",
            "record_link": "select source, record_id, person_id from graph.record_link",
            "household_member": "select person_id, household_id from graph.household_member",
            "lineage": "select kind, event, id, related_id, members from audit.id_lineage",
            "overmerge": "select source, record_id, person_id, reason, action from linkage.overmerge_flag",
        }
        # the whole household graph, and the column types the golden publish reads
        graph = [t for (t,) in con.execute("select table_name from information_schema.tables "
                                           "where table_schema = 'graph' order by 1").fetchall()]
        tables.update({f"graph.{t}": f"select * from graph.{t}" for t in graph})
        tables["graph types"] = ("select table_name, column_name, data_type from information_schema.columns "
                                 "where table_schema = 'graph'")
        # the engines sum the same weights in another order: probabilities agree to about 1e-15, not bit for bit
        # (graph.record_link's best-link probability, like the pairs' weights, is compared to 9 places)
        out = {name: sorted((tuple(round(v, 9) if isinstance(v, float) else v for v in row)
                             for row in con.execute(sql).fetchall()), key=repr) for name, sql in tables.items()}
    finally:
        con.close()
    return {"summary": summary, "settings": settings, **out}


@pytest.fixture(scope="module")
def on_duckdb(city, tmp_path_factory) -> dict:
    return _link(city, tmp_path_factory.mktemp("duckdb-run") / "data")


@pytest.fixture(scope="module")
def local_spark(tmp_path_factory):
    spark, _ = spark_session(SparkOptions(work_dir=tmp_path_factory.mktemp("spark-session"), conf=_QUICK_JVM))
    yield spark
    spark.stop()


@pytest.mark.spark
@pytest.mark.slow
def test_duckdb_string_similarities_give_duckdbs_numbers_on_spark(local_spark, tmp_path):
    """The JVM functions the translated model calls (linkage_models/spark/DuckDBSimilarity.java) against DuckDB's
    own on names with typos, strings of a 3-letter alphabet (many transpositions), accents (DuckDB counts
    UTF-8 bytes), empty strings and nulls. Splink's own JVM Jaro-Winkler fails on the first pair."""
    import random

    from linkage_models._engine import register_duckdb_similarities, similarity_jar

    rnd = random.Random(5)
    names = ["WILLIAMS", "WILMIAMS", "MOHAMMED", "MUHAMMAD", "CATHERINE", "KATHRYN", "O'NEILL", "ONEIL", "JO", "J"]
    pairs = [("WILLIAMS", "WILMIAMS"), ("", ""), ("A", ""), ("A", "A"), ("AB", "BA"), ("CA", "ABC"),
             ("ZOË", "ZOE"), ("JOSÉ", "JOSE"), ("ŁUKASZ", "LUKASZ"), (None, "A"), ("SW1A 1AA", "SW1A 1AA"),
             ("SW1A 1AA", "SW1A 1A"), ("M1 1AE", "M11 AE")]
    pairs += [(a, b) for a in names for b in names]
    pairs += [("".join(rnd.choice("ABC") for _ in range(rnd.randint(0, 8))),
               "".join(rnd.choice("ABC") for _ in range(rnd.randint(0, 8)))) for _ in range(300)]
    functions = ("jaro_winkler_similarity", "jaro_similarity", "damerau_levenshtein")
    con = duckdb.connect()
    con.execute("create table p (i integer, a varchar, b varchar)")
    con.executemany("insert into p values (?, ?, ?)", [(i, a, b) for i, (a, b) in enumerate(pairs)])
    expected = con.execute(f"select i, {', '.join(f'{f}(a, b)' for f in functions)} from p order by i").fetchall()
    jar = similarity_jar(tmp_path / "jars")  # compiled here, from the source in the package
    assert jar.stat().st_size > 1000
    register_duckdb_similarities(local_spark, jar)  # the session has the cached copy already: registered only
    local_spark.createDataFrame([(i, a, b) for i, (a, b) in enumerate(pairs)],
                                "i int, a string, b string").createOrReplaceTempView("p")
    on_spark = ", ".join(f"duckdb_{f}(a, b)" for f in functions)
    got = [tuple(r) for r in local_spark.sql(f"select i, {on_spark} from p order by i").collect()]
    assert got == expected  # exactly: the model's thresholds (0.9, 0.92, <= 1) must cut at the same pairs
    assert expected[0][1] > 0.9  # 'williams'/'wilmiams': 0.908 on DuckDB, 0.892 with half transpositions


@pytest.mark.spark
@pytest.mark.slow
def test_the_stable_id_rule_gives_the_same_ids_and_lineage_on_spark(local_spark, tmp_path):
    """The same SQL files (linkage_models/sql/stable_ids), translated and run on Spark, on the hand-made case of
    every rule: merges, a tie, a split, a retirement, a new id, two rounds of mutual best matching."""
    from linkage_models._engine import SparkEngine
    from tests.test_stable_ids import HAND_MADE_IDS, HAND_MADE_LINEAGE, hand_made

    engine = SparkEngine(SparkOptions(work_dir=tmp_path / "work"), spark=local_spark)
    try:
        on_spark = hand_made(engine)
    finally:
        engine.close()
    on_duckdb = hand_made()
    assert on_spark.group_ids.rows() == on_duckdb.group_ids.rows()
    assert on_spark.lineage.rows() == on_duckdb.lineage.rows() == HAND_MADE_LINEAGE
    assert dict(on_spark.group_ids.select("group", "id").rows()) == HAND_MADE_IDS
    assert on_spark.rounds == on_duckdb.rounds == 2
    assert not list((tmp_path / "work").glob("run-*"))  # the Parquet the rule ran on is gone


def _assert_same_link(on_spark: dict, on_duckdb: dict) -> None:
    for table in ("pairs", "person_cluster", "record_link", "household_member", "lineage", "overmerge"):
        assert on_spark[table] == on_duckdb[table], table
    graph = [name for name in on_duckdb if name.startswith("graph")]
    assert len(graph) == 8  # the seven tables of warehouse/sql/graph and their column types
    for table in graph:
        assert on_spark[table] == on_duckdb[table], table
    for key in ("records", "persons", "scored_pairs", "households", "lineage"):
        assert on_spark["summary"][key] == on_duckdb["summary"][key], key


@pytest.mark.spark
@pytest.mark.slow
def test_link_stage_on_spark_gives_the_pairs_clusters_and_ids_duckdb_gives(city, on_duckdb, local_spark, tmp_path,
                                                                          caplog):
    with caplog.at_level("INFO", logger="familylink.link"):
        on_spark = _link(city, tmp_path / "data", engine="spark")
    # person and household ids were computed on Spark, by the same SQL as on DuckDB
    engines = [m.split()[3].rstrip(":") for m in caplog.messages if m.startswith("stable ids on ")]
    assert engines == ["spark", "spark"]  # persons, then households
    # and the household graph by the same SQL files as on DuckDB, translated
    assert [m.split()[3] for m in caplog.messages if m.startswith("graph built on")] == ["spark"]
    # the city links for real: most people are known to several agencies, households have several members
    assert on_duckdb["summary"]["persons"] < 0.8 * on_duckdb["summary"]["records"]
    assert on_duckdb["summary"]["households"] < on_duckdb["summary"]["persons"] / 2
    _assert_same_link(on_spark, on_duckdb)
    # the Parquet exchanged with Spark (record values) is gone once the stage ends
    work = on_spark["settings"].spark_checkpoints
    assert not [p for p in work.glob("run-*")], "the engine's exchange folder outlived the link stage"
    assert local_spark.sparkContext.master == "local[2]"  # the session the stage ran on, still the test's


# how far a Spark-trained m probability and the pairs its model keeps at 0.9 may lie from DuckDB's training of
# the same plan (the engines draw different random samples of pairs for u). Measured on the test city: m within
# 0.01 at every level, 71 pairs against DuckDB's 76 (7 %)
M_TOLERANCE = 0.05
PAIRS_TOLERANCE = 0.2


def _train_pinned(city: Settings, folder: Path, engine: str) -> tuple[dict, dict, int]:
    """The city's approved plan pinned to one training block (date of birth), 4 EM iterations, no prior
    estimate, u sampled on 50,000 pairs in one chunk: trained on `engine`; (plan, model, pairs DuckDB scores
    at 0.9 or more with the saved model)."""
    from linkage_models._model_builder import build_input
    from linkage_models._person_model import make_linker, train_person_model
    from linkage_models.pipeline import engine_for

    shutil.copytree(city.data_dir, folder)
    settings = city.with_overrides(data_dir=folder, engine=engine, spark_checkpoint_dir=folder.parent / "spark")
    approved = json.loads((settings.models / "person" / "approved.json").read_text())["version"]
    plan = json.loads((settings.models / "person" / approved / "settings.json").read_text())
    plan["familylink"]["training_rules"] = [r for r in plan["familylink"]["training_rules"]
                                            if r["columns"] == ["date_of_birth"]]
    plan["familylink"]["deterministic_rules"] = []
    plan["splink_settings"]["max_iterations"] = 4
    pinned = folder.parent / "pinned.json"
    pinned.write_text(json.dumps(plan))
    con = duckdb.connect(str(settings.warehouse))
    try:
        with engine_for(settings) as engine_in_use:  # on Spark, the test's session
            engine_in_use.u_sampling = {"num_chunks": 1}  # as the Spark engine samples
            version = train_person_model(con, settings.models, settings_path=pinned, engine=engine_in_use,
                                         max_pairs=5e4).version
        saved = settings.models / "person" / version
        assert json.loads((saved / "metadata.json").read_text())["engine"] == engine
        build_input(con)
        pairs = make_linker(con, str(saved / "model.duckdb.json")).inference.predict(threshold_match_probability=0.9)
        scored = con.execute(f"select count(*) from {pairs.physical_name}").fetchall()[0][0]
    finally:
        con.close()
    return plan, json.loads((saved / "model.duckdb.json").read_text()), scored


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("FAMILYLINK_TEST_SPARK_TRAINING") != "1",
                    reason="33 s quiet, 142 s at load 7 (EM on Spark, then on DuckDB): past the Spark "
                           "tests' CI budget; set FAMILYLINK_TEST_SPARK_TRAINING=1")
def test_training_on_spark_keeps_the_model_spec_and_learns_what_duckdb_learns(city, local_spark, tmp_path):
    """The trained model is the same spec (every level's SQL as the settings file has it), saved in DuckDB SQL,
    and learns what the same training on DuckDB learns. Not identical: u is a random sample of pairs and the
    engines sample differently; so the check is DuckDB's own training of the same plan, within a margin.
    (Session 5 wanted more than 100 pairs at 0.9 from this one-block training: DuckDB's training of it keeps
    ≈77 on this city, the figure was stale after the model builder's blocking rules changed.)"""
    plan, on_spark, spark_pairs = _train_pinned(city, tmp_path / "spark-run" / "data", "spark")
    _, on_duckdb, duckdb_pairs = _train_pinned(city, tmp_path / "duckdb-run" / "data", "duckdb")
    spec = plan["splink_settings"]
    assert [[l["sql_condition"] for l in c["comparison_levels"]] for c in on_spark["comparisons"]] == \
        [[l["sql_condition"] for l in c["comparison_levels"]] for c in spec["comparisons"]]
    forename = on_spark["comparisons"][0]["comparison_levels"]
    exact = next(l for l in forename if l.get("label_for_charts") == "exact")
    assert exact["m_probability"] > exact["u_probability"] * 10  # learnt on Spark, not Splink's defaults
    # the same m probabilities, level by level, within the spread two u samples give
    for mine, theirs in zip(on_spark["comparisons"], on_duckdb["comparisons"]):
        for level, other in zip(mine["comparison_levels"], theirs["comparison_levels"]):
            if "m_probability" in level and "m_probability" in other:
                assert level["m_probability"] == pytest.approx(other["m_probability"], abs=M_TOLERANCE), \
                    (mine["output_column_name"], level.get("label_for_charts"))
    assert duckdb_pairs > 50
    assert spark_pairs == pytest.approx(duckdb_pairs, rel=PAIRS_TOLERANCE)
    assert not list((tmp_path / "spark-run" / "spark").glob("run-*"))


# ------------------------------------------------------------------ a standalone cluster on loopback
def _wait_for(url: str, ready, seconds: float = 120) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                state = json.loads(response.read())
            if ready(state):
                return state
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} not ready after {seconds} s")
        time.sleep(1)


@pytest.fixture(scope="module")
def standalone_cluster(local_spark, tmp_path_factory):
    """A Spark master and one worker (1 core, 1 GB) on 127.0.0.1, from the pyspark package's own jars."""
    import pyspark

    local_spark.stop()  # one JVM at a time: the driver below is a new SparkSession
    home = Path(pyspark.__file__).parent
    logs = tmp_path_factory.mktemp("spark-cluster")
    port, ui, worker_ui = free_port(), free_port(), free_port()
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOG_DIR": str(logs), "SPARK_WORKER_DIR": str(logs / "work"),
           "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_DAEMON_MEMORY": "256m",
           "SPARK_DAEMON_JAVA_OPTS": "-XX:TieredStopAtLevel=1"}
    spark_class = str(home / "bin" / "spark-class")
    master = subprocess.Popen([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                               "--port", str(port), "--webui-port", str(ui)], env=env,
                              stdout=open(logs / "master.log", "wb"), stderr=subprocess.STDOUT)
    url = f"spark://127.0.0.1:{port}"
    worker = subprocess.Popen([spark_class, "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1",
                               "--cores", "1", "--memory", "1g", "--webui-port", str(worker_ui),
                               "--work-dir", str(logs / "work")], env=env,
                              stdout=open(logs / "worker.log", "wb"), stderr=subprocess.STDOUT)
    try:
        _wait_for(f"http://127.0.0.1:{ui}/json/", lambda s: s.get("aliveworkers", 0) >= 1)
        yield url, f"http://127.0.0.1:{ui}/json/"
    finally:
        for process in (worker, master):  # the worker first, so the master does not try to recover it
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.mark.spark
@pytest.mark.slow
def test_link_stage_runs_against_a_standalone_cluster(city, on_duckdb, standalone_cluster, tmp_path):
    url, status = standalone_cluster
    conf = {**_QUICK_JVM, "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
            "spark.cores.max": "1"}
    on_cluster = _link(city, tmp_path / "data", engine="spark", spark_master=url, spark_executor_memory="768m",
                       spark_shuffle_partitions=4, spark_conf=conf)
    _assert_same_link(on_cluster, on_duckdb)
    # the work ran on the cluster: the master lists the finished familylink application with its executor
    state = _wait_for(status, lambda s: s.get("completedapps"), seconds=30)
    apps = [a for a in state["completedapps"] if a["name"] == "familylink"]
    assert apps and apps[0]["cores"] >= 1
