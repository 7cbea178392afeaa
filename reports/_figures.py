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

from warehouse import table_exists

THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.99, 0.999)


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
    if not table_exists(con, "linkage.person_pairs"):
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
    if table_exists(con, "linkage.clerical_decision"):
        decided = con.sql("""
            with latest as (
                select * exclude (rn) from (
                    select *, row_number() over (partition by source_l, record_id_l, source_r, record_id_r
                                                 order by decided_at desc, rowid desc) as rn
                    from linkage.clerical_decision where undone_at is null)
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
        if table_exists(con, "linkage.overmerge_flag") else []
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


# ------------------------------------------------------------------------------------------ plain words
def _pair_count(frame: pl.DataFrame, keys: list[str]) -> int:
    sizes = frame.group_by(keys).len()["len"]
    return int((sizes * (sizes - 1) // 2).sum()) if sizes.len() else 0


def truth_pair_counts(con: duckdb.DuckDBPyConnection, truth_dir: Path | None) -> dict | None:
    """Pairs linked, pairs that are truly one person, and both (synthetic city only: ground truth)."""
    if truth_dir is None or not (Path(truth_dir) / "records.parquet").exists():
        return None
    clusters = con.sql("select source, record_id, person_id as cluster_id from graph.record_link").pl()
    truth = pl.read_parquet(Path(truth_dir) / "records.parquet", columns=["source", "record_id", "person_id"])
    c = clusters.join(truth, on=["source", "record_id"])
    return {"linked_pairs": _pair_count(c, ["cluster_id"]), "true_pairs": _pair_count(c, ["person_id"]),
            "correct_pairs": _pair_count(c, ["cluster_id", "person_id"])}


def model_estimate(con: duckdb.DuckDBPyConnection, threshold: float) -> dict | None:
    """What Splink's own match probabilities imply when nobody has labelled pairs: among accepted pairs the
    expected number of wrong links is the sum of (1 - probability), and of same-person pairs left apart the sum
    of the probabilities below the threshold. Intervals are ±1.96 standard deviations of those sums (a
    Poisson-binomial count). They hold only as far as the model's probabilities are calibrated."""
    if not table_exists(con, "linkage.person_pairs"):
        return None
    accepted, wrong, wrong_var, missed, missed_var, kept_match = con.execute("""
        select count(*) filter (where match_probability >= $t),
               coalesce(sum(1 - match_probability) filter (where match_probability >= $t), 0),
               coalesce(sum(match_probability * (1 - match_probability)) filter (where match_probability >= $t), 0),
               coalesce(sum(match_probability) filter (where match_probability < $t), 0),
               coalesce(sum(match_probability * (1 - match_probability)) filter (where match_probability < $t), 0),
               coalesce(sum(match_probability) filter (where match_probability >= $t), 0)
        from linkage.person_pairs""", {"t": threshold}).fetchall()[0]
    if not accepted:
        return None
    precision = 1 - wrong / accepted
    half = 1.96 * math.sqrt(wrong_var) / accepted
    matches = kept_match + missed
    recall = kept_match / matches if matches else 1.0
    recall_half = 1.96 * math.sqrt(missed_var) / matches if matches else 0.0
    return {"pairs": int(accepted), "precision": precision,
            "precision_ci": (max(0.0, precision - half), min(1.0, precision + half)),
            "recall": recall, "recall_ci": (max(0.0, recall - recall_half), min(1.0, recall + recall_half))}


def in_words(share: float) -> str:
    """0.0004 -> 'about 4 in 10,000'; 0.0145 -> 'about 1.5 in 100'; 0 -> 'none'."""
    if share <= 0:
        return "none"
    for base in (100, 1_000, 10_000, 100_000, 1_000_000):
        count = share * base
        if count >= 1 or base == 1_000_000:
            shown = f"{count:.1f}".rstrip("0").rstrip(".") if count < 10 else f"{round(count):,}"
            return f"about {shown} in {base:,}"
    return "none"  # pragma: no cover


def _verdict(interval: tuple[float, float], target: float) -> str:
    low, high = interval
    if low >= target:
        return "met"
    if high < target:
        return "not met"
    return "cannot tell yet (the interval spans the target)"


def plain_accuracy(accuracy_figures: dict, truth_pairs: dict | None, estimate: dict | None,
                   target_precision: float, target_recall: float) -> dict | None:
    """The headline a data-protection lead can act on: wrong links and missed links in words, with a 95% interval
    and the council's target, from the best evidence there is (ground truth, clerical labels, the model itself)."""
    if accuracy_figures.get("truth") and truth_pairs:
        t = truth_pairs
        basis = ("ground truth (this is the synthetic city: the true person of every record is known), counting "
                 "every pair of records placed in one person")
        precision_n, precision_hits = t["linked_pairs"], t["correct_pairs"]
        recall_n, recall_hits = t["true_pairs"], t["correct_pairs"]
        precision = precision_hits / precision_n if precision_n else 1.0
        recall = recall_hits / recall_n if recall_n else 1.0
        precision_ci, recall_ci = wilson_interval(precision_hits, precision_n), wilson_interval(recall_hits, recall_n)
    elif accuracy_figures.get("clerical") and accuracy_figures["clerical"]["random"]["precision"] is not None:
        c = accuracy_figures["clerical"]["random"]
        basis = f"clerical review of {c['precision_n']} pairs drawn at random (`familylink review`)"
        precision, precision_ci, precision_n = c["precision"], c["precision_ci"], c["precision_n"]
        recall = c["recall"] if c["recall"] is not None else 1.0
        recall_ci, recall_n = c["recall_ci"], c["recall_n"]
    elif estimate:
        basis = ("the model's own match probabilities (no ground truth and no clerical labels yet; run "
                 "`familylink review` for an estimate that does not rely on the model)")
        precision, precision_ci, precision_n = estimate["precision"], estimate["precision_ci"], estimate["pairs"]
        recall, recall_ci, recall_n = estimate["recall"], estimate["recall_ci"], estimate["pairs"]
    else:
        return None
    return {
        "basis": basis,
        "precision": precision, "precision_ci": precision_ci, "precision_n": precision_n,
        "recall": recall, "recall_ci": recall_ci, "recall_n": recall_n,
        "wrong_links": in_words(1 - precision),
        "wrong_links_range": (in_words(1 - precision_ci[1]), in_words(1 - precision_ci[0])),
        "missed_links": in_words(1 - recall),
        "missed_links_range": (in_words(1 - recall_ci[1]), in_words(1 - recall_ci[0])),
        "target_precision": target_precision, "target_recall": target_recall,
        "target_wrong": in_words(1 - target_precision), "target_missed": in_words(1 - target_recall),
        "precision_verdict": _verdict(precision_ci, target_precision),
        "recall_verdict": _verdict(recall_ci, target_recall),
    }


_AGE_BAND = """case when age is null then 'unknown' when age < 5 then '00-04' when age < 11 then '05-10'
    when age < 16 then '11-15' when age < 18 then '16-17' when age < 25 then '18-24' when age < 35 then '25-34'
    when age < 50 then '35-49' when age < 65 then '50-64' else '65+' end"""


def link_rates_by_group(con: duckdb.DuckDBPyConnection) -> dict:
    """Share of each group's persons known to more than one source, by sex and by age band: missed links fall
    unevenly (names that change, young people without identifiers), so a lower rate in one group is a question."""
    rows = _rows(con, f"""
        with sexes as (  -- the most often recorded sex of each person's records
            select l.person_id, mode(r.sex) as sex
            from graph.record_link as l join staging.person_record as r using (source, record_id)
            where r.sex in ('M', 'F') group by 1
        ),
        persons as (
            select p.person_id, coalesce(s.sex, 'U') as sex, {_AGE_BAND} as age_band, p.sources
            from graph.person as p left join graph.household_member as m using (person_id)
            left join sexes as s using (person_id)
        )
        select 'sex' as by, sex as grp, count(*) as persons, avg((sources > 1)::int) as share
        from persons group by all
        union all
        select 'age band', age_band, count(*), avg((sources > 1)::int) from persons group by all
        order by 1, 2""") if table_exists(con, "graph.person") and table_exists(con, "graph.household_member") else []
    return {"rows": rows}


def recall_by_group(con: duckdb.DuckDBPyConnection, truth_dir: Path | None) -> list[dict]:
    """Synthetic city only: recall (same-person pairs linked) by the true person's sex, age band and ethnic group."""
    if truth_dir is None or not (Path(truth_dir) / "persons.parquet").exists():
        return []
    persons = pl.read_parquet(Path(truth_dir) / "persons.parquet")
    clusters = con.sql("select source, record_id, person_id as cluster_id from graph.record_link").pl()
    records = pl.read_parquet(Path(truth_dir) / "records.parquet", columns=["source", "record_id", "person_id"])
    c = clusters.join(records, on=["source", "record_id"])
    as_of = con.execute("select max(extract_date) from audit.current_extract").fetchall()[0][0]
    groups = {}
    if "sex" in persons.columns:
        groups["sex"] = pl.col("sex").cast(pl.String).fill_null("U")
    if "date_of_birth" in persons.columns and as_of is not None:
        age = ((pl.lit(as_of) - pl.col("date_of_birth")).dt.total_days() / 365.25).floor()
        groups["age band"] = (pl.when(age.is_null()).then(pl.lit("unknown"))
                              .when(age < 5).then(pl.lit("00-04")).when(age < 11).then(pl.lit("05-10"))
                              .when(age < 16).then(pl.lit("11-15")).when(age < 18).then(pl.lit("16-17"))
                              .when(age < 25).then(pl.lit("18-24")).when(age < 35).then(pl.lit("25-34"))
                              .when(age < 50).then(pl.lit("35-49")).when(age < 65).then(pl.lit("50-64"))
                              .otherwise(pl.lit("65+")))
    ethnic = next((col for col in ("ethnic_group", "ethnicity") if col in persons.columns), None)
    if ethnic:
        groups["ethnic group"] = pl.col(ethnic).cast(pl.String).fill_null("unknown")
    out = []
    for by, expression in groups.items():
        labelled = c.join(persons.select("person_id", expression.alias("grp")), on="person_id", how="left")
        for grp, part in sorted(labelled.group_by("grp"), key=lambda g: str(g[0][0])):
            true_pairs = _pair_count(part, ["person_id"])
            if true_pairs:
                correct = _pair_count(part, ["cluster_id", "person_id"])
                out.append({"by": by, "grp": grp[0], "true_pairs": true_pairs, "recall": correct / true_pairs,
                            "recall_ci": wilson_interval(correct, true_pairs)})
    return out


def addresses_and_households(con: duckdb.DuckDBPyConnection) -> dict | None:
    """UPRN matching (one definition: warehouse.UPRN_MATCH_RATE_DEFINITION) and the households built from it."""
    from warehouse import UPRN_MATCH_RATE_DEFINITION, uprn_match_rate

    if not (table_exists(con, "linkage.address_match") and table_exists(con, "graph.household")):
        return None
    by_source = _rows(con, """
        with eligible as (
            select r.source, address_key(r.address_std, r.postcode, r.uprn) as address_key
            from staging.person_record as r
            where not coalesce(r.no_fixed_abode, false) and (r.address_std is not null or r.uprn is not null)
        )
        select e.source, count(*) as records_with_address, count(m.uprn) filter (where not m.unverified) as matched,
               count(m.uprn) filter (where not m.unverified) / count(*) as share,
               count(m.uprn) filter (where m.unverified) as source_uprn_unverified
        from eligible as e
        -- a gazetteer's UPRN is a match; a source's own (no gazetteer) is counted apart, unverified
        left join (select distinct address_key, uprn, match_method = 'source_uprn_unverified' as unverified
                   from linkage.address_match where uprn is not null) as m
          using (address_key)
        group by 1 order by 1""")
    methods = _rows(con, """
        select coalesce(match_method, 'unmatched') as method, count(*) as addresses
        from linkage.address_match group by 1 order by 2 desc""")
    households = con.execute("""
        select count(*), count(*) filter (where uprn is not null), count(*) filter (where is_communal_establishment),
               avg(members), count(*) filter (where members >= 8)
        from graph.household""").fetchall()[0]
    sizes = _rows(con, """
        select case when members >= 8 then '8+' else cast(members as varchar) end as size, count(*) as households
        from graph.household group by 1 order by min(members)""")
    # no gazetteer (none found, or an empty one): nothing was matched, so a 0% match rate would read as a failure
    gazetteer = con.execute("select count(*) from linkage.gazetteer").fetchone()[0] \
        if table_exists(con, "linkage.gazetteer") else 0
    return {"definition": UPRN_MATCH_RATE_DEFINITION, "rate": uprn_match_rate(con), "by_source": by_source,
            "no_gazetteer": gazetteer == 0,
            "methods": methods, "households": households[0], "households_with_uprn": households[1],
            "communal": households[2], "mean_size": households[3] or 0.0, "large": households[4], "sizes": sizes}


def related_records(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Per source, records about someone other than the subject (e.g. a pupil's parent/carer contact)."""
    return _rows(con, """
        select source, record_role, count(*) as records
        from staging.person_record where record_role <> 'subject' group by all order by 1, 2""")


def retention_in_words(days: int | None) -> str:
    if days is None:
        return "—"
    years, rest = divmod(int(days), 365)
    if years and rest <= 2:  # 2190 days -> 6 years (leap days aside)
        return f"{years} year{'s' if years != 1 else ''} ({days:,} days)"
    return f"{days:,} days"
