"""The figures of the run report, read from the warehouse. Counts, shares and ids only — never personal data.

Each function answers one question a data-protection lead asks and returns plain Python data, so the
template only lays it out and tests can check each figure against the warehouse.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import polars as pl

THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.99, 0.999)


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    return bool(con.execute("select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                            [schema, name]).fetchall()[0][0])


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    return con.sql(sql, params=params or None).pl().to_dicts()


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (sound for small samples and shares near 0 or 1)."""
    if trials == 0:
        return (0.0, 1.0)
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return (max(0.0, centre - half), min(1.0, centre + half))


def sources(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict]:
    """Per source: what this run did with its extract, and the extract now staged — rows received, staged,
    quarantined and the top reasons (an unchanged extract is not read again, so its figures come from the
    run that loaded it)."""
    loads = _rows(con, """
        with this_run as (
            select source, arg_max(status, recorded_at) as status_this_run, arg_max(message, recorded_at) as message
            from audit.file_manifest where run_id = ? group by source
        ),
        current as (
            select m.source, m.file_name, m.file_sha256, m.run_id as loaded_run_id, m.extract_date,
                   coalesce(m.rows_read, 0) as rows_read, coalesce(m.rows_staged, 0) as rows_staged,
                   coalesce(m.rows_quarantined, 0) as rows_quarantined
            from audit.current_extract as c
            join audit.file_manifest as m
              on m.source = c.source and m.file_sha256 = c.file_sha256 and m.run_id = c.loaded_run_id
             and m.status = 'loaded'
        )
        select coalesce(c.source, t.source) as source, c.file_name, c.loaded_run_id, c.extract_date,
               coalesce(t.status_this_run, 'not read') as status, t.message,
               coalesce(c.rows_read, 0) as rows_read, coalesce(c.rows_staged, 0) as rows_staged,
               coalesce(c.rows_quarantined, 0) as rows_quarantined
        from current as c full join this_run as t using (source)
        order by source""", [run_id])
    reasons = con.sql("""
        select q.source, reason, count(*) as n
        from (select source, run_id, unnest(reasons) as reason from quarantine.row) as q
        join audit.current_extract as c on c.source = q.source and c.loaded_run_id = q.run_id
        group by all order by q.source, n desc, reason""").pl()
    for load in loads:
        mine = reasons.filter(pl.col("source") == load["source"]).head(5)
        load["top_reasons"] = mine.select("reason", "n").to_dicts()
    return loads


def linked_across_sources(con: duckdb.DuckDBPyConnection) -> dict:
    """Share of each source's records whose person is also known to another source, and by source pair."""
    links = con.sql("select source, person_id from graph.record_link").pl()
    per_person = links.group_by("person_id").agg(pl.col("source").unique().alias("sources"))
    records = links.join(per_person, on="person_id")
    names = sorted(links["source"].unique().to_list())
    overall = []
    matrix = []
    for source in names:
        mine = records.filter(pl.col("source") == source)
        other = mine.filter(pl.col("sources").list.len() > 1).height
        overall.append({"source": source, "records": mine.height, "linked_to_another_source": other,
                        "share": other / mine.height if mine.height else 0.0})
        row = {"source": source}
        for target in names:
            row[target] = (mine.filter(pl.col("sources").list.contains(target)).height / mine.height
                           if mine.height and target != source else None)
        matrix.append(row)
    return {"sources": names, "overall": overall, "matrix": matrix}


def match_weights(con: duckdb.DuckDBPyConnection, threshold: float) -> dict:
    """Histogram of scored pairs' match weights and what moving the threshold would change."""
    if not _exists(con, "linkage.person_pairs"):
        return {"histogram": [], "thresholds": []}
    histogram = _rows(con, """
        select floor(match_weight)::int as weight, count(*) as pairs
        from linkage.person_pairs group by 1 order by 1""")
    current = con.execute("select count(*) from linkage.person_pairs where match_probability >= ?",
                          [threshold]).fetchall()[0][0]
    moves = []
    for t in sorted(set(THRESHOLDS) | {threshold}):
        pairs, records = con.execute("""
            with accepted as (select * from linkage.person_pairs where match_probability >= ?)
            select (select count(*) from accepted),
                   (select count(*) from (select unique_id_l from accepted union select unique_id_r from accepted))
            """, [t]).fetchall()[0]
        moves.append({"threshold": t, "pairs_accepted": pairs, "records_with_a_link": records,
                      "change_in_pairs": pairs - current, "in_use": t == threshold})
    return {"histogram": histogram, "thresholds": moves}


def accuracy(con: duckdb.DuckDBPyConnection, truth_dir: Path | None) -> dict:
    """Estimated precision and recall: from ground truth when it exists, and from clerical labels."""
    result: dict = {"truth": None, "clerical": None}
    if truth_dir is not None and (Path(truth_dir) / "records.parquet").exists():
        from linkage_models.evaluate import person_link_quality

        clusters = con.sql("select source, record_id, cast(person_id as varchar) as cluster_id "
                           "from graph.record_link").pl()
        quality = person_link_quality(clusters, pl.read_parquet(Path(truth_dir) / "records.parquet"))
        result["truth"] = {k: quality[k] for k in ("records", "pairwise_precision", "pairwise_recall", "pairwise_f1",
                                                   "same_household_precision")}
    if _exists(con, "linkage.clerical_decision"):
        decided = con.sql("""
            with latest as (
                select * exclude (rn) from (
                    select *, row_number() over (partition by source_l, record_id_l, source_r, record_id_r
                                                 order by decided_at desc, rowid desc) as rn
                    from linkage.clerical_decision)
                where rn = 1
            )
            select d.decision, coalesce(d.stratum, 'manual') as stratum, (l.person_id = r.person_id) as linked
            from latest as d
            join graph.record_link as l on l.source = d.source_l and l.record_id = d.record_id_l
            join graph.record_link as r on r.source = d.source_r and r.record_id = d.record_id_r
            """).pl()
        if decided.height:
            labelled = decided.filter(pl.col("decision") != "unsure")
            # The headline estimate uses the random stratum only: borderline pairs are over-sampled on
            # purpose, so pooling them would understate precision. Everything labelled is shown beside it.
            result["clerical"] = {
                "pairs_labelled": labelled.height,
                "unsure": decided.height - labelled.height,
                "random": _clerical_estimate(labelled.filter(pl.col("stratum") == "random")),
                "all": _clerical_estimate(labelled),
            }
    return result


def _clerical_estimate(labelled: pl.DataFrame) -> dict:
    linked = labelled.filter(pl.col("linked"))
    matches = labelled.filter(pl.col("decision") == "match")
    precision_hits = linked.filter(pl.col("decision") == "match").height
    recall_hits = matches.filter(pl.col("linked")).height
    return {
        "precision": precision_hits / linked.height if linked.height else None,
        "precision_n": linked.height, "precision_ci": wilson_interval(precision_hits, linked.height),
        "recall": recall_hits / matches.height if matches.height else None,
        "recall_n": matches.height, "recall_ci": wilson_interval(recall_hits, matches.height),
    }


def clusters(con: duckdb.DuckDBPyConnection, run_id: str, largest: int = 10) -> dict:
    sizes = _rows(con, """
        select records, count(*) as persons
        from (select person_id, count(*) as records from graph.record_link group by 1)
        group by 1 order by 1""")
    biggest = _rows(con, f"""
        select person_id, count(*) as records, list(distinct source order by source) as sources
        from graph.record_link group by 1 order by records desc, person_id limit {int(largest)}""")
    flags = _rows(con, """
        select reason, action, count(distinct cluster_key) as clusters, count(*) as records,
               list(distinct person_id order by person_id)[:10] as person_ids
        from linkage.overmerge_flag where run_id = ? group by all order by action, reason""", [run_id]) \
        if _exists(con, "linkage.overmerge_flag") else []
    return {"sizes": sizes, "largest": biggest, "flags": flags}


def changes(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict]:
    """The run's id changes: pending while it runs (its report is written before it completes), then committed."""
    from linkage_models import run_lineage

    frame = run_lineage(con, run_id)
    return frame.group_by("kind", "event").agg(pl.len().alias("ids")).sort("kind", "event").to_dicts()


def model(model_dir: Path | None) -> dict | None:
    if model_dir is None or not (model_dir / "metadata.json").exists():
        return None
    return json.loads((model_dir / "metadata.json").read_text(encoding="utf-8"))


def sharing(contracts: dict) -> list[dict]:
    return [{"source": name, "agency": c.agency, "owner": c.sharing.owning_organisation,
             "lawful_basis": c.sharing.lawful_basis, "retention_days": c.sharing.retention_days,
             "agreement": c.sharing.dsa_reference}
            for name, c in sorted(contracts.items())]
