"""Where the pairwise work of the person model runs: DuckDB inside the warehouse (the default) or Spark.

The link stage has three kinds of work. Scoring candidate pairs (training's EM and u sampling, prediction)
and connected components grow with the pairs and the records of a region; they run through Splink's own
database abstraction (`DuckDBAPI` or `SparkAPI`), so the same Splink calls serve both engines. Stable ids
and the household graph are the link stage's own SQL files in DuckDB's dialect, run on the engine: on DuckDB
as written, on Spark translated (`spark_query`, `run_script`) over tables sent as Parquet, their results read
back into the warehouse, whose transactions keep the state (id sequences, lineage, the committed previous
assignment). Building the Splink input from staging and the over-merge guard stay in the warehouse's DuckDB.
See docs/adr/0009-spark-engine.md.

One model spec: the settings file and the approved model (`model.duckdb.json`) are written in DuckDB SQL,
the dialect the practitioner service links referrals with. On Spark, `spark_settings` translates every
comparison level and blocking rule mechanically (sqlglot, plus the few functions whose names differ, and
DuckDB's own string similarities registered as UDFs so every level means the same on both engines);
a model trained on Spark has its parameters copied back onto the DuckDB spec, level by level.

The Parquet exchanged between DuckDB and Spark (the Splink input holds names and dates of birth) lives in
a per-run folder under `spark_work_dir` and is deleted when the step ends, like Splink's checkpoints.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import uuid
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import sqlglot
from sqlglot import exp

if TYPE_CHECKING:
    from splink import Linker
    from splink.internals.splink_dataframe import SplinkDataFrame

log = logging.getLogger("familylink.engine")


class EngineError(RuntimeError):
    """The engine could not start or run (no Java, cluster unreachable): one line, no record values."""

    message_is_safe = True
    stage = "link"


# ------------------------------------------------------------------------------ DuckDB SQL → Spark SQL
# DuckDB functions the person model uses whose Spark name or meaning differs: Spark built-ins, and DuckDB's
# string similarities as `register_duckdb_similarities` gives them to Spark (Spark 4's own
# jaro_winkler_similarity is another variant, and a built-in shadows any function registered under its name)
_SIMILARITIES = {"jaro_winkler_similarity": "duckdb_jaro_winkler_similarity", "jaro_similarity": "duckdb_jaro_similarity",
                 "damerau_levenshtein": "duckdb_damerau_levenshtein"}
_RENAMED = {"list_intersect": "array_intersect", "list_distinct": "array_distinct", "list_concat": "concat",
            "array_length": "size", **_SIMILARITIES}


def _to_spark(node: exp.Expression, array_columns: frozenset[str]) -> exp.Expression:
    if isinstance(node, exp.JarowinklerSimilarity):
        return exp.Anonymous(this=_SIMILARITIES["jaro_winkler_similarity"], expressions=[node.this, node.expression])
    if isinstance(node, exp.Anonymous) and node.name.lower() in _RENAMED:
        return exp.Anonymous(this=_RENAMED[node.name.lower()], expressions=node.expressions)
    if isinstance(node, (exp.Length, exp.ArraySize)):
        arg = node.this
        is_array = (isinstance(arg, exp.Column) and arg.name.lower() in array_columns) or (
            isinstance(arg, (exp.Anonymous, exp.ArrayDistinct, exp.ArrayConcat, exp.ArrayIntersect)))
        if is_array:
            return exp.Anonymous(this="size", expressions=[arg])
    if isinstance(node, exp.DateDiff) and (node.unit is None or node.text("unit").lower() in ("day", "days")):
        # DuckDB date_diff('day', start, end) is end - start in days: Spark's datediff(end, start)
        return exp.Anonymous(this="datediff", expressions=[node.this, node.expression])
    if isinstance(node, exp.DateDiff) and node.text("unit").lower() in ("year", "years"):
        # DuckDB counts the year boundaries crossed; Spark's datediff(year, ...) the whole years elapsed
        return exp.Paren(this=exp.Sub(this=exp.Anonymous(this="year", expressions=[node.this]),
                                      expression=exp.Anonymous(this="year", expressions=[node.expression])))
    if isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Order) and isinstance(node.this.this, exp.Distinct):
        # list(distinct x order by x): Spark's collect_list keeps neither; collect_set, sorted, is the same list
        # (DuckDB's list keeps a null, collect_set drops it: the graph lists sources, never null)
        (value,), (order,) = node.this.this.expressions, node.this.expressions
        if order.this != value or order.args.get("desc"):
            raise EngineError("list(distinct x order by y) translates to Spark only with y = x, ascending")
        return exp.Anonymous(this="array_sort", expressions=[exp.Anonymous(this="collect_set", expressions=[value])])
    return node


def _translated(sql: str | exp.Expression, array_columns: frozenset[str]) -> str:
    tree = sqlglot.parse_one(sql, read="duckdb") if isinstance(sql, str) else sql
    # children first, so a renamed list function is seen as an array by the len() around it
    for node in reversed(list(tree.walk())):
        replacement = _to_spark(node, array_columns)
        if replacement is not node:
            if node is tree:
                tree = replacement
            else:
                node.replace(replacement)
    return tree.sql(dialect="spark")


def spark_sql(condition: str, array_columns: frozenset[str] = frozenset()) -> str:
    """One DuckDB boolean expression of the model (a comparison level, a blocking rule) in Spark SQL."""
    if condition.strip().upper() == "ELSE":
        return condition
    return _translated(condition, array_columns)


def spark_query(query: str) -> str:
    """A DuckDB query of the link stage's SQL files (stable ids, the graph) in Spark SQL, by the same rules as
    the model's conditions: sqlglot, then the functions whose names differ (_RENAMED)."""
    return _translated(query, frozenset())


def _load_parquet(con: duckdb.DuckDBPyConnection, folder: Path, target: str, *, temp: bool) -> None:
    """A folder of Parquet files Spark wrote, as the warehouse (temp) table `target`."""
    kind = "temp table" if temp else "table"
    con.execute(f"create or replace {kind} {target} as select * from read_parquet({_quoted(f'{folder}/*.parquet')})")


def _table_name(table: exp.Table) -> str:
    return ".".join(part for part in (table.text("db"), table.name) if part)


def _view_name(table: str) -> str:
    """A warehouse table (graph.person) as the name of its Spark temp view (graph__person)."""
    return table.replace(".", "__")


def _literal(value: Any) -> exp.Expression:
    import datetime as dt

    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), "date")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def _warehouse_macros(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[list[str], exp.Expression]]:
    """The warehouse's own SQL macros (warehouse/sql/schema.sql: address_key), parsed, to be written out in full
    in a query sent to Spark: their definition stays in one place."""
    rows = con.execute("select function_name, parameters, macro_definition from duckdb_functions() "
                       "where function_type = 'macro' and not internal").fetchall()
    return {name.lower(): (list(params), sqlglot.parse_one(body, read="duckdb")) for name, params, body in rows}


def _portable(query: exp.Expression, variables: dict[str, Any], macros: dict, views: dict[str, str]) -> exp.Expression:
    """A DuckDB query of a script made self-contained for another engine: getvariable('x') → the value, the
    warehouse's macros → their body, each warehouse table it reads → `views[table]`."""
    query = query.copy()
    ctes = {cte.alias for cte in query.find_all(exp.CTE)}
    for table in list(query.find_all(exp.Table)):
        name = _table_name(table)
        if name not in ctes:
            table.set("db", None)
            table.set("catalog", None)
            table.set("this", exp.to_identifier(views[name]))
    for call in list(query.find_all(exp.Anonymous)):
        name = call.name.lower()
        if name == "getvariable":
            key = call.expressions[0].name
            if key not in variables:
                raise EngineError(f"the script reads the variable {key!r}, which was not given")
            call.replace(_literal(variables[key]))
        elif name in macros:
            params, body = macros[name]
            args = dict(zip(params, call.expressions))
            call.replace(exp.Paren(this=body.copy().transform(
                lambda n: args[n.name].copy() if isinstance(n, exp.Column) and not n.table and n.name in args else n)))
    return query


def _reads(query: exp.Expression) -> list[str]:
    """The warehouse tables a query reads (not its CTEs)."""
    ctes = {cte.alias for cte in query.find_all(exp.CTE)}
    return list(dict.fromkeys(name for t in query.find_all(exp.Table) if (name := _table_name(t)) not in ctes))


def _statements(script: str) -> list[tuple[str, exp.Expression]]:
    """(target table, query) of each `create or replace table <t> as <query>` of a script."""
    out = []
    for statement in sqlglot.parse(script, read="duckdb"):
        if not (isinstance(statement, exp.Create) and statement.kind == "TABLE"
                and isinstance(statement.expression, exp.Query)):
            raise EngineError("a script run on the engine holds `create or replace table <t> as <query>` only")
        out.append((_table_name(statement.this), statement.expression))
    return out


def spark_settings(settings: dict, array_columns: frozenset[str]) -> dict:
    """The same Splink model with every SQL condition translated to Spark SQL (comparison levels and their
    array columns, blocking rules). Parameters, labels and level order are untouched."""
    out = copy.deepcopy(settings)
    out["sql_dialect"] = "spark"
    names = frozenset(c.lower() for base in array_columns for c in (base, f"{base}_l", f"{base}_r"))
    for comparison in out.get("comparisons", []):
        for level in comparison["comparison_levels"]:
            if "sql_condition" in level:
                level["sql_condition"] = spark_sql(level["sql_condition"], names)
    rules = []
    for rule in out.get("blocking_rules_to_generate_predictions", []):
        if isinstance(rule, dict):
            rules.append({**rule, "blocking_rule": spark_sql(rule["blocking_rule"], names), "sql_dialect": "spark"})
        else:
            rules.append(spark_sql(rule, names))
    out["blocking_rules_to_generate_predictions"] = rules
    return out


_TRAINED_LEVEL_KEYS = ("m_probability", "u_probability", "tf_adjustment_weight", "fix_m_probability",
                       "fix_u_probability")


def trained_onto_spec(spec: dict, trained: dict) -> dict:
    """The DuckDB spec with the parameters a model trained elsewhere learnt, comparison by comparison and level
    by level (the translation keeps both in the same order)."""
    out = copy.deepcopy(spec)
    out["probability_two_random_records_match"] = trained["probability_two_random_records_match"]
    if len(out["comparisons"]) != len(trained["comparisons"]):
        raise EngineError("trained model and settings differ in their comparisons")
    for mine, theirs in zip(out["comparisons"], trained["comparisons"]):
        if len(mine["comparison_levels"]) != len(theirs["comparison_levels"]):
            raise EngineError(f"comparison {mine.get('output_column_name')}: levels differ after training")
        for level, learnt in zip(mine["comparison_levels"], theirs["comparison_levels"]):
            for key in _TRAINED_LEVEL_KEYS:
                if key in learnt:
                    level[key] = learnt[key]
                else:
                    level.pop(key, None)
    return out


_JAVA_SOURCE = Path(__file__).parent / "spark" / "DuckDBSimilarity.java"
# DuckDB's function → its class in DuckDBSimilarity.java (registered in Spark as _SIMILARITIES names it)
_JAVA_CLASSES = {"jaro_similarity": "JaroSimilarity", "jaro_winkler_similarity": "JaroWinklerSimilarity",
                 "damerau_levenshtein": "DamerauLevenshtein"}


def similarity_jar(folder: Path) -> Path:
    """DuckDB's jaro_similarity, jaro_winkler_similarity and damerau_levenshtein for Spark, giving the same
    numbers (spark/DuckDBSimilarity.java): compiled with the JDK's javac against pyspark's own jars into
    `folder`, once per version of the source.

    JVM code, not Python UDFs: a Python UDF sends every candidate pair through a Python worker and Spark
    evaluates it for every pair even where the comparison level needing it is never reached; that made
    scoring on Spark ≈30× slower than DuckDB (docs/adr/0009-spark-engine.md)."""
    import hashlib
    import subprocess
    import tempfile
    import zipfile

    import pyspark

    source = _JAVA_SOURCE.read_bytes()
    jar = Path(folder) / f"familylink-similarity-{hashlib.sha256(source).hexdigest()[:12]}.jar"
    if jar.exists():
        return jar
    javac = shutil.which("javac")
    if javac is None:
        raise EngineError("the Spark engine compiles its string similarities with javac: install a JDK "
                          "(make system-deps installs Debian's default-jdk-headless)")
    jar.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # UDF2 is all the class needs: the one jar keeps javac quick (the whole folder is ≈250 jars)
        api = sorted((Path(pyspark.__file__).parent / "jars").glob("spark-sql-api_*.jar"))
        classpath = str(api[0]) if api else str(Path(pyspark.__file__).parent / "jars" / "*")
        done = subprocess.run([javac, "--release", "17", "-nowarn", "-cp", classpath, "-d", tmp, str(_JAVA_SOURCE)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise EngineError(f"javac could not compile {_JAVA_SOURCE.name}: {done.stderr.strip()[:500]}")
        partial = jar.with_name(f"{jar.name}.{uuid.uuid4().hex[:8]}")  # another process may compile at once
        with zipfile.ZipFile(partial, "w") as archive:
            for compiled in sorted(Path(tmp).rglob("*.class")):
                archive.write(compiled, compiled.relative_to(tmp).as_posix())
        partial.replace(jar)
    return jar


def register_duckdb_similarities(spark, jar: Path) -> None:
    """The duckdb_* functions of `similarity_jar` in the session (the translated model calls them). A session
    started elsewhere (a notebook's, a test's) is given the jar first."""
    from pyspark.sql.types import DoubleType, LongType

    if jar.name not in spark.conf.get("spark.jars", ""):
        spark.sql(f"ADD JAR {_quoted(str(jar))}")
    for name, java_class in _JAVA_CLASSES.items():
        kind = LongType() if name == "damerau_levenshtein" else DoubleType()  # an edit count; the others a similarity
        spark.udf.registerJavaFunction(_SIMILARITIES[name], f"familylink.DuckDBSimilarity${java_class}", kind)


# ------------------------------------------------------------------------------------------- engines
def _quoted(path: str) -> str:
    """A path as a SQL string literal (a data folder may contain an apostrophe)."""
    return "'" + path.replace("'", "''") + "'"


# Splink's working tables during prediction and clustering: an in-memory catalog, not the warehouse file
SCRATCH = "familylink_scratch"
# Splink's Linker sets the "splink" logger's level when given one, undoing the console's (pipelines/_logging.py:
# training notes only with --verbose): None leaves Splink's logging as the application configured it
SPLINK_LOG_LEVEL = None


@dataclass
class DuckDBEngine:
    """Splink on the warehouse connection itself: the input is read where it is, nothing is copied.

    Inside `scratch`, the tables Splink creates (blocked pairs, term frequencies, predictions, clustering
    iterations) go to an in-memory catalog instead of the warehouse file: they are read once and dropped, and
    writing them to the file cost ≈ 4 s of a 55 s prediction at 1M records (docs/adr/0006). What the stage
    keeps is copied into the warehouse (`save_pairs`, `connected_components`), and the callers drop Splink's
    tables inside `scratch` as before.
    """

    name = "duckdb"
    u_sampling: dict = field(default_factory=dict)  # Splink's defaults: 10 chunks, stop when levels have counts

    @contextmanager
    def scratch(self, con: duckdb.DuckDBPyConnection):
        home = con.execute("select current_database()").fetchone()[0].replace('"', '""')
        con.execute(f"attach if not exists ':memory:' as {SCRATCH}")
        # unqualified names resolve to the scratch catalog first, then to the warehouse's main schema (the input)
        con.execute(f"use {SCRATCH}; set search_path = '{SCRATCH}.main,\"{home}\".main'")
        try:
            yield
        finally:
            con.execute(f'use "{home}".main; reset search_path')

    @staticmethod
    def _table(name: str) -> str:
        """A table Splink made inside `scratch`, by a name that resolves outside it too."""
        return f"{SCRATCH}.main.{name}"

    def linker(self, con: duckdb.DuckDBPyConnection, table: str, settings: dict | str | Path) -> "Linker":
        from splink import DuckDBAPI, Linker

        self.records = DuckDBAPI(connection=con).register(table)  # the last registered input (relink)
        return Linker(self.records, settings, log_level=SPLINK_LOG_LEVEL)

    def model_json(self, linker: "Linker", spec: dict) -> dict:
        return linker.misc.save_model_to_json()

    def relink(self, records: "SplinkDataFrame", model: dict) -> "Linker":
        """A Linker over already registered records with a (DuckDB SQL) model."""
        from splink import Linker

        return Linker(records, model, log_level=SPLINK_LOG_LEVEL)

    def save_pairs(self, con: duckdb.DuckDBPyConnection, pairs: "SplinkDataFrame", target: str, columns: str) -> None:
        con.execute(f"create or replace table {target} as select {columns} from {self._table(pairs.physical_name)}")

    def connected_components(self, con: duckdb.DuckDBPyConnection, nodes_table: str, edges_table: str,
                             target: str) -> None:
        """`target` (unique_id, cluster_id varchar): connected components of the edges over the nodes."""
        from splink import DuckDBAPI
        from splink.clustering import cluster_pairwise_predictions_at_threshold

        with self.scratch(con):
            db_api = DuckDBAPI(connection=con)
            components = cluster_pairwise_predictions_at_threshold(
                db_api.register(nodes_table), db_api.register(edges_table), db_api, node_id_column_name="unique_id",
                threshold_match_probability=None)  # the edges are already the accepted links
        con.execute(f"create or replace temp table {target} as select unique_id, cast(cluster_id as varchar) as "
                    f"cluster_id from {self._table(components.physical_name)}")
        with self.scratch(con):
            components.drop_table_from_database_and_remove_from_cache()

    # the link stage's own SQL (stable ids, the graph): tables the engine's queries read by name. On DuckDB these
    # are temp tables of the warehouse connection itself, so nothing crosses and the warehouse's transaction holds them
    def upload(self, con: duckdb.DuckDBPyConnection, name: str, query: str) -> None:
        """The rows of a warehouse query as table `name` of the engine."""
        con.execute(f"create or replace temp table {name} as {query}")

    def materialize(self, con: duckdb.DuckDBPyConnection, name: str, query: str, checkpoint: bool = True) -> None:
        """A query in DuckDB SQL, run on the engine, kept as table `name` (it may read the `name` it replaces).
        `checkpoint=False`: the engine may keep the query instead of its rows (Spark does)."""
        con.execute(f"create or replace temp table {name} as {query}")

    def count(self, con: duckdb.DuckDBPyConnection, name: str) -> int:
        return con.execute(f"select count(*) from {name}").fetchall()[0][0]

    def download(self, con: duckdb.DuckDBPyConnection, name: str) -> None:
        """The engine's table `name` as the warehouse temp table `name` (here it is one already)."""

    def drop(self, con: duckdb.DuckDBPyConnection, names: list[str]) -> None:
        for name in names:
            con.execute(f"drop table if exists temp.main.{name}")

    # scripts that build warehouse tables (the graph's SQL files): on DuckDB, the warehouse runs them as written
    def run_script(self, con: duckdb.DuckDBPyConnection, script: str, variables: dict[str, Any]) -> None:
        """Run a DuckDB script of `create or replace table` statements (its variables are set in `con`)."""
        con.execute(script)

    def end_scripts(self, con: duckdb.DuckDBPyConnection) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class SparkOptions:
    """Where and how big: from settings (pipelines/settings.py `spark_*`)."""

    master: str = "local[2]"
    driver_memory: str = "2g"
    executor_memory: str | None = None
    shuffle_partitions: int = 8
    work_dir: Path = Path("data/spark")  # exchange Parquet and checkpoints; shared storage on a cluster
    conf: dict[str, str] = field(default_factory=dict)
    app_name: str = "familylink"
    # how Splink cuts Spark's lineage between steps: "parquet" (its default) writes each intermediate table to
    # the checkpoint folder and scales; "persist" keeps them in executor memory, quicker for small runs
    break_lineage: str = "parquet"


def _jar_folder() -> Path:
    """Where the compiled similarity jar is kept between runs: the user's cache, so it is compiled once per
    machine (it holds no data; Spark serves it to executors from the driver, so it needs no shared storage)."""
    import os

    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "familylink" / "spark-jars"


def spark_session(options: SparkOptions):
    """(session, started): the process's active SparkSession is reused (a test's, or a notebook's on a
    cluster); otherwise one is started from the options with Splink's similarity UDFs on its classpath."""
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    builder = (SparkSession.builder.appName(options.app_name).master(options.master)
               # Splink's similarity UDFs and DuckDB's (register_duckdb_similarities), shipped to every executor
               .config("spark.jars", f"{similarity_jar_location()},{similarity_jar(_jar_folder())}")
               .config("spark.driver.memory", options.driver_memory)
               .config("spark.sql.shuffle.partitions", str(options.shuffle_partitions))
               .config("spark.default.parallelism", str(options.shuffle_partitions))
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               # shuffle and spill files hold record values: keep them in the private work folder
               .config("spark.local.dir", str(Path(options.work_dir).resolve() / "local")))
    if options.executor_memory:
        builder = builder.config("spark.executor.memory", options.executor_memory)
    if options.master.startswith("local"):
        builder = builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
    for key, value in options.conf.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # Java missing, master unreachable: the class and the master only
        raise EngineError(f"Spark did not start against {options.master} ({exc.__class__.__name__}); is Java "
                          "installed (make system-deps) and the master reachable?") from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark, True


class SparkEngine:
    """Splink's SparkAPI on a SparkSession. Tables cross from the warehouse as Parquet in a per-engine folder
    (under `work_dir`) that `close` deletes, checkpoints included."""

    name = "spark"
    # one chunk: each of Splink's u-sampling chunks is a full Spark job graph, and its early stop rarely
    # comes before the last chunk on sparse levels (identifiers); one pass over max_pairs is cheaper
    u_sampling = {"num_chunks": 1}

    def __init__(self, options: SparkOptions, spark=None):
        self.options = options
        self.spark, self.started = (spark, False) if spark is not None else spark_session(options)
        self.folder = Path(options.work_dir).resolve() / f"run-{uuid.uuid4().hex[:12]}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.spark.sparkContext.setCheckpointDir(str(self.folder / "checkpoints"))
        self._db_api = None
        self._arrays: frozenset[str] = frozenset()  # array columns of the last table sent to Spark
        self._written = 0  # tables kept as Parquet so far (each in a fresh folder)
        self._parquet: dict[str, Path] = {}  # view name → the Parquet folder it reads
        self._script_views: dict[str, str] = {}  # warehouse table → its view, while scripts run (run_script)

    @property
    def db_api(self):
        from splink.backends.spark import SparkAPI

        if self._db_api is None:
            self._db_api = SparkAPI(spark_session=self.spark, break_lineage_method=self.options.break_lineage,
                                    num_partitions_on_repartition=self.options.shuffle_partitions)
            # after Splink's own UDFs, so DuckDB's meaning wins
            register_duckdb_similarities(self.spark, similarity_jar(_jar_folder()))
        return self._db_api

    def to_spark(self, con: duckdb.DuckDBPyConnection, table: str):
        """A warehouse table as a Spark DataFrame, through Parquet the executors can read."""
        path = self.folder / "in" / table
        path.parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"copy (select * from {table}) to {_quoted(f'{path}.parquet')} (format parquet)")
        return self.spark.read.parquet(f"{path}.parquet")

    def from_spark(self, con: duckdb.DuckDBPyConnection, frame, name: str, target: str, *, temp: bool = False) -> None:
        """A Spark DataFrame written as Parquet and loaded into the warehouse as `target`."""
        path = self.folder / "out" / name
        frame.write.mode("overwrite").parquet(str(path))
        _load_parquet(con, path, target, temp=temp)

    def _array_columns(self, frame) -> frozenset[str]:
        from pyspark.sql.types import ArrayType

        return frozenset(f.name for f in frame.schema.fields if isinstance(f.dataType, ArrayType))

    def linker(self, con: duckdb.DuckDBPyConnection, table: str, settings: dict | str | Path) -> "Linker":
        from splink import Linker

        frame = self.to_spark(con, table)
        if not isinstance(settings, dict):
            settings = json.loads(Path(settings).read_text(encoding="utf-8"))
        self._arrays = self._array_columns(frame)
        if settings.get("sql_dialect", "duckdb") == "duckdb":
            settings = spark_settings(settings, self._arrays)
        self.records = self.db_api.register(frame)  # the last registered input (relink)
        return Linker(self.records, settings, log_level=SPLINK_LOG_LEVEL)

    def model_json(self, linker: "Linker", spec: dict) -> dict:
        return trained_onto_spec(spec, linker.misc.save_model_to_json())

    def relink(self, records: "SplinkDataFrame", model: dict) -> "Linker":
        from splink import Linker

        return Linker(records, spark_settings(model, self._arrays), log_level=SPLINK_LOG_LEVEL)

    def save_pairs(self, con: duckdb.DuckDBPyConnection, pairs: "SplinkDataFrame", target: str, columns: str) -> None:
        self.from_spark(con, self.spark.sql(f"select {columns} from {pairs.physical_name}"), "pairs", target)

    def connected_components(self, con: duckdb.DuckDBPyConnection, nodes_table: str, edges_table: str,
                             target: str) -> None:
        from splink.clustering import cluster_pairwise_predictions_at_threshold

        nodes = self.db_api.register(self.to_spark(con, nodes_table).select("unique_id"))
        edges = self.db_api.register(self.to_spark(con, edges_table))
        components = cluster_pairwise_predictions_at_threshold(
            nodes, edges, self.db_api, node_id_column_name="unique_id", threshold_match_probability=None)
        frame = self.spark.sql(f"select unique_id, cast(cluster_id as string) as cluster_id "
                               f"from {components.physical_name}")
        self.from_spark(con, frame, "clusters", target, temp=True)
        components.drop_table_from_database_and_remove_from_cache()

    def scratch(self, con: duckdb.DuckDBPyConnection):
        return nullcontext()  # Splink's tables live in Spark (and its checkpoint folder) already

    # the link stage's own SQL (stable ids, the graph): temp views, over Parquet in the exchange folder where a
    # table is read several times or by the next round of an iterative rule. Writing it once and reading it back
    # (a fresh folder per version) cuts Spark's lineage between rounds, as Splink's "parquet" checkpoints do, and
    # lets a query read the table it replaces. A view made from a query keeps the plan of the tables it read.
    def _keep(self, name: str, write) -> None:
        self._written += 1
        path = self.folder / "sql" / f"{name}-{self._written}"
        write(path)
        self._parquet[name] = path
        self.spark.read.parquet(str(path)).createOrReplaceTempView(name)

    def upload(self, con: duckdb.DuckDBPyConnection, name: str, query: str) -> None:
        """The rows of a warehouse query (run in DuckDB) as Spark's temp view `name`."""
        def write(path: Path) -> None:
            path.mkdir(parents=True)
            con.execute(f"copy ({query}) to {_quoted(str(path / 'part-0.parquet'))} (format parquet)")
        self._keep(name, write)

    def materialize(self, con: duckdb.DuckDBPyConnection, name: str, query: str, checkpoint: bool = True) -> None:
        """A query in DuckDB SQL, translated (spark_query) and run on Spark, kept as the temp view `name`: over
        Parquet written now, or (checkpoint=False) over the query's plan, computed where it is read."""
        frame = self.spark.sql(spark_query(query))
        if checkpoint:
            self._keep(name, lambda path: frame.write.parquet(str(path)))
        else:
            self._parquet.pop(name, None)
            frame.createOrReplaceTempView(name)

    def count(self, con: duckdb.DuckDBPyConnection, name: str) -> int:
        return self.spark.table(name).count()

    def download(self, con: duckdb.DuckDBPyConnection, name: str) -> None:
        """Spark's table `name` as the warehouse temp table `name`, through Parquet (read where it was kept)."""
        path = self._parquet.get(name)
        if path is None:
            self.from_spark(con, self.spark.table(name), name, name, temp=True)
        else:
            _load_parquet(con, path, name, temp=True)

    def drop(self, con: duckdb.DuckDBPyConnection, names: list[str]) -> None:
        for name in names:
            self.spark.catalog.dropTempView(name)
            con.execute(f"drop table if exists temp.main.{name}")

    def run_script(self, con: duckdb.DuckDBPyConnection, script: str, variables: dict[str, Any]) -> None:
        """Each `create or replace table <t> as <query>` of a DuckDB script (the graph's SQL files) run on Spark:
        the warehouse tables the query reads are sent once (upload) and read as views until `end_scripts`, a
        table a statement builds is read by the later ones where Spark made it; the query, with its variables
        and the warehouse's macros written in (_portable), is translated and run (materialize); its rows replace
        <t> in the warehouse with the column types DuckDB gives the same query (DuckDB plans it with `limit 0`
        and reads no row: Spark has no unsigned integers, and Parquet would otherwise set the types)."""
        views = self._script_views
        macros = _warehouse_macros(con)
        for target, query in _statements(script):
            for table in _reads(query):
                if table not in views:
                    views[table] = _view_name(table)
                    self.upload(con, views[table], f"select * from {table}")
            view = _view_name(target)
            self.materialize(con, view, _portable(query, variables, macros, views).sql(dialect="duckdb"))
            views[target] = view
            con.execute(f"create or replace table {target} as select * from ({query.sql(dialect='duckdb')}) limit 0")
            self.download(con, view)
            con.execute(f"insert into {target} by name select * from temp.main.{view}")
            con.execute(f"drop table temp.main.{view}")

    def end_scripts(self, con: duckdb.DuckDBPyConnection) -> None:
        """Forget the warehouse tables the scripts read (a later script sends them again)."""
        self.drop(con, list(self._script_views.values()))
        self._script_views.clear()

    def close(self) -> None:
        """Drop what Splink cached and delete every file this engine wrote (record values among them)."""
        if self._db_api is not None:
            for table in list(self._db_api._intermediate_table_cache.values()):
                try:
                    table.drop_table_from_database_and_remove_from_cache()
                except Exception:  # a view Spark already dropped
                    pass
        for view in self.spark.catalog.listTables():
            if view.isTemporary and view.name.startswith("__splink"):
                self.spark.catalog.dropTempView(view.name)
        self.spark.catalog.clearCache()
        if self.started:  # a session this step started ends with it (its JVM holds the driver's memory)
            self.spark.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def open_engine(settings: Any):
    """The engine the settings name (`engine: duckdb | spark`)."""
    if settings.engine == "duckdb":
        return DuckDBEngine()
    return SparkEngine(spark_options(settings))


def spark_options(settings: Any) -> SparkOptions:
    return SparkOptions(master=settings.spark_master, driver_memory=settings.spark_driver_memory,
                        executor_memory=settings.spark_executor_memory,
                        shuffle_partitions=settings.spark_shuffle_partitions, work_dir=settings.spark_checkpoints,
                        conf=dict(settings.spark_conf))
