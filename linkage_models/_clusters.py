"""Clustering scored pairs into persons, honouring clerical decisions and guarding against over-merges.

1. Edges are the scored pairs at or above the threshold, less every pair with a cannot-link decision in
   force, plus every must-link pair (probability 1). Splink's connected components clusters them.
2. A cluster is an over-merge when it holds two different valid NHS numbers, or both records of a
   cannot-link pair (connected through others). Such a cluster is rebuilt from its own edges, strongest
   first (must-links before any scored pair), refusing any edge that would join two NHS numbers or a
   cannot-link pair: the weakest links that caused the conflict are the ones left out. Recorded as `split`.
   Two dates of birth a generation apart (more than GENERATION_YEARS, and not one mistyped or
   transposed digit apart) are a conflict too for a link made without dates (one of its records has
   none): a parent and a child joined through a contact row that names one and carries the other's
   phone. A link between two dated records weighed the dates already (a date keyed badly stays).
   An undated record a source states to be the parent of a dated one (its `born_before`, the child's date
   less PARENT_YEARS) and a record born after that bound are a conflict too, however they were joined: a
   parent named like their child, at the child's address, with the phone on the child's records.
3. A cluster whose dates of birth still lie more than a year apart cannot be one person unless a date was
   mistyped; it is kept, and recorded as `flagged` for review (the report lists it).

Standardisation has already nulled NHS numbers that fail the modulus-11 check, so every NHS number
here is a valid one. See docs/adr/0002-person-linkage-model.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl
from linkage_models.clerical import decisions_in_force
from warehouse import column_names

PAIRS = "linkage.person_pairs"
EDGES = "person_linkage_edges"  # main schema, like the Splink input table

# Dates of birth further apart than this cannot belong to one person (a year off by one is a known
# recording error and is allowed by the model).
DOB_SPREAD_DAYS = 366
# Dates of birth further apart than this are different generations: a conflict the guard splits, unless
# the two dates are one keying error apart (a digit mistyped, two digits transposed: 1987 → 1997).
GENERATION_YEARS = 12


def _one_keying_error(a: str, b: str) -> bool:
    diffs = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    if len(diffs) == 1:
        return True
    return len(diffs) == 2 and diffs[1] == diffs[0] + 1 and a[diffs[0]] == b[diffs[1]] and a[diffs[1]] == b[diffs[0]]


def dates_conflict(a: str, b: str) -> bool:
    """Two ISO dates of birth (YYYY-MM-DD) that cannot be one person's, even allowing one keying error."""
    years = abs(int(a[:4]) - int(b[:4]))
    return years > GENERATION_YEARS and not _one_keying_error(a, b)


@dataclass
class Clustering:
    clusters: pl.DataFrame  # unique_id, cluster_id
    flags: pl.DataFrame  # unique_id, cluster_key, reason, action


def _decision_pairs(con: duckdb.DuckDBPyConnection, decision: str) -> pl.DataFrame:
    decided = decisions_in_force(con).filter(pl.col("decision") == decision)
    return decided.select(
        (pl.col("source_l") + ":" + pl.col("record_id_l")).alias("unique_id_l"),
        (pl.col("source_r") + ":" + pl.col("record_id_r")).alias("unique_id_r"),
    )


def _build_edges(con: duckdb.DuckDBPyConnection, nodes_table: str, threshold: float,
                 must: pl.DataFrame, cannot: pl.DataFrame) -> None:
    con.register("_must", must)
    con.register("_cannot", cannot)
    try:
        con.execute(
            f"""
            create or replace table {EDGES} as
            with scored as (
                select unique_id_l, unique_id_r, match_probability
                from {PAIRS}
                where match_probability >= {float(threshold)}
            ),
            cannot as (  -- either orientation
                select unique_id_l as a, unique_id_r as b from _cannot
                union all
                select unique_id_r, unique_id_l from _cannot
            ),
            kept as (
                select s.*
                from scored as s
                anti join cannot as c on s.unique_id_l = c.a and s.unique_id_r = c.b
            ),
            must as (
                select m.unique_id_l, m.unique_id_r, 1.0 as match_probability
                from _must as m
                semi join {nodes_table} as nl on nl.unique_id = m.unique_id_l
                semi join {nodes_table} as nr on nr.unique_id = m.unique_id_r
            )
            select *, false as must_link from kept
            union all
            select *, true as must_link from must
            """
        )
    finally:
        con.unregister("_must")
        con.unregister("_cannot")


class _Components:
    """Union-find over one cluster's records, refusing unions that join conflicting records."""

    def __init__(self, nodes: list[str], nhs: dict[str, str | None], cannot: set[frozenset[str]],
                 dob: dict[str, str | None] | None = None, bound: dict[str, str | None] | None = None):
        self.parent = {n: n for n in nodes}
        self.nhs = {n: ({nhs[n]} if nhs.get(n) else set()) for n in nodes}
        dob = dob or {}
        self.dated = {n for n in nodes if dob.get(n)}
        self.dob = {n: ({dob[n]} if dob.get(n) else set()) for n in nodes}
        bound = bound or {}
        self.bound = {n: ({bound[n]} if bound.get(n) else set()) for n in nodes}  # born before (ISO dates)
        self.members = {n: {n} for n in nodes}
        self.cannot = cannot

    def find(self, node: str) -> str:
        while self.parent[node] != node:
            self.parent[node] = self.parent[self.parent[node]]
            node = self.parent[node]
        return node

    def conflicts(self, a: str, b: str, undated_link: bool = True) -> bool:
        if len(self.nhs[a] | self.nhs[b]) > 1:
            return True
        # a link the model made without dates of birth (a contact row naming a parent, carrying a child's
        # number) must not join dates a generation apart; a link between two dated records weighed them
        # already (a badly keyed date stays with its person)
        if undated_link and any(dates_conflict(x, y) for x in self.dob[a] for y in self.dob[b]):
            return True
        # a stated parent (born before their bound) is not anyone born after it
        if any(born > before for x, y in ((a, b), (b, a)) for before in self.bound[x] for born in self.dob[y]):
            return True
        small, large = sorted((self.members[a], self.members[b]), key=len)
        return any(frozenset((x, y)) in self.cannot for x in small for y in large)

    def union(self, a: str, b: str, force: bool = False) -> bool:
        undated = a not in self.dated or b not in self.dated
        a, b = self.find(a), self.find(b)
        if a == b:
            return True
        if not force and self.conflicts(a, b, undated):
            return False
        if len(self.members[a]) < len(self.members[b]):
            a, b = b, a
        self.parent[b] = a
        self.members[a] |= self.members.pop(b)
        self.nhs[a] |= self.nhs.pop(b)
        self.dob[a] |= self.dob.pop(b)
        self.bound[a] |= self.bound.pop(b)
        return True


def _split(nodes: list[tuple[str, str | None, str | None, str | None]], edges: list[tuple[str, str, bool]],
           cannot: set[frozenset[str]]) -> dict[str, str]:
    """Rebuild one over-merged cluster from its edges, strongest first; returns unique_id → new cluster id.

    `nodes` are (unique_id, nhs_number, dob, born_before); `edges` (unique_id_l, unique_id_r, must_link),
    strongest first."""
    ids = [node[0] for node in nodes]
    components = _Components(ids, {node[0]: node[1] for node in nodes}, cannot, {node[0]: node[2] for node in nodes},
                             {node[0]: node[3] for node in nodes})
    for left, right, must in edges:
        components.union(left, right, force=must)  # a reviewer's must-link stands even against the guard
    groups: dict[str, list[str]] = {}
    for node in ids:
        groups.setdefault(components.find(node), []).append(node)
    return {node: min(members) for members in groups.values() for node in members}


def cluster_persons(con: duckdb.DuckDBPyConnection, nodes_table: str, threshold: float, engine=None) -> Clustering:
    """Cluster the scored pairs in linkage.person_pairs over the records of `nodes_table` (unique_id,
    nhs_number, date_of_birth). Connected components run on the engine (linkage_models/_engine.py); the
    guard works on the few suspect clusters in the warehouse."""
    from linkage_models._engine import DuckDBEngine

    must = _decision_pairs(con, "match")
    cannot = _decision_pairs(con, "non_match")
    bound = "n.born_before" if "born_before" in column_names(con, nodes_table) else "null::date"  # a stated parent's latest birth
    _build_edges(con, nodes_table, threshold, must, cannot)
    (engine or DuckDBEngine()).connected_components(con, nodes_table, EDGES, "_cluster")

    con.register("_cannot", cannot)
    try:
        suspects = con.sql(
            f"""
            with nhs as (
                select c.cluster_id
                from _cluster as c join {nodes_table} as n using (unique_id)
                where n.nhs_number is not null
                group by c.cluster_id
                having count(distinct n.nhs_number) > 1
            ),
            cannot as (
                select cl.cluster_id
                from _cannot as x
                join _cluster as cl on cl.unique_id = x.unique_id_l
                join _cluster as cr on cr.unique_id = x.unique_id_r
                where cl.cluster_id = cr.cluster_id
            ),
            generations as (
                select c.cluster_id
                from _cluster as c join {nodes_table} as n using (unique_id)
                where n.date_of_birth is not null
                group by c.cluster_id
                having date_diff('year', min(n.date_of_birth), max(n.date_of_birth)) > {GENERATION_YEARS}
            ),
            parents as (
                select c.cluster_id
                from _cluster as c join {nodes_table} as n using (unique_id)
                group by c.cluster_id
                having min({bound}) < max(n.date_of_birth)
            )
            select cluster_id, 'nhs_number_conflict' as reason from nhs
            union all
            select distinct cluster_id, 'cannot_link' from cannot
            union all
            select cluster_id, 'generations_apart' from generations
            union all
            select cluster_id, 'parent_and_child' from parents
            """
        ).pl()
    finally:
        con.unregister("_cannot")
    cannot_set = {frozenset(p) for p in cannot.select("unique_id_l", "unique_id_r").iter_rows()}
    clusters = con.sql("select unique_id, cluster_id from _cluster").pl()
    flags = [pl.DataFrame(schema={"unique_id": pl.String, "cluster_key": pl.String, "reason": pl.String,
                                  "action": pl.String})]
    if suspects.height:
        con.register("_suspect", suspects.select("cluster_id").unique())
        nodes = con.sql(f"select c.cluster_id, c.unique_id, n.nhs_number, strftime(n.date_of_birth, '%Y-%m-%d') as dob, "
                        f"strftime({bound}, '%Y-%m-%d') as bound "
                        f"from _cluster as c "
                        f"join {nodes_table} as n using (unique_id) semi join _suspect using (cluster_id)").pl()
        edges = con.sql(f"select c.cluster_id, e.* from {EDGES} as e join _cluster as c on c.unique_id = e.unique_id_l "
                        f"semi join _suspect using (cluster_id)").pl()
        con.unregister("_suspect")
        new_ids: dict[str, str] = {}
        # sorted once, strongest first within each cluster, then split in plain Python: polars per cluster cost
        # ≈1 ms each, and a million records have thousands of suspect clusters. Probabilities are rounded:
        # DuckDB and Spark sum the same weights in another order (last-bit differences), which must not
        # reorder equally strong edges (ties go to the ids on either engine)
        ordered = edges.with_columns(pl.col("match_probability").round(9)).sort(
            ["cluster_id", "must_link", "match_probability", "unique_id_l", "unique_id_r"],
            descending=[False, True, True, False, False])
        edges_of: dict[str, list[tuple[str, str, bool]]] = {}
        for cluster_id, left, right, must in ordered.select(
                "cluster_id", "unique_id_l", "unique_id_r", "must_link").iter_rows():
            edges_of.setdefault(cluster_id, []).append((left, right, must))
        nodes_of: dict[str, list[tuple[str, str | None, str | None, str | None]]] = {}
        for cluster_id, *node in nodes.select("cluster_id", "unique_id", "nhs_number", "dob", "bound").iter_rows():
            nodes_of.setdefault(cluster_id, []).append(tuple(node))
        for cluster_id, cluster_nodes in nodes_of.items():
            new_ids.update(_split(cluster_nodes, edges_of.get(cluster_id, []), cannot_set))
        remap = pl.DataFrame({"unique_id": list(new_ids), "new_cluster_id": list(new_ids.values())})
        # a suspect the guard found no conflict in (dates one keying error apart) is not recorded as split
        split = nodes.join(remap, on="unique_id").group_by("cluster_id").agg(
            pl.col("new_cluster_id").n_unique().alias("parts")).filter(pl.col("parts") > 1)
        reasons = suspects.group_by("cluster_id").agg(pl.col("reason").sort().str.join(",")).join(
            split.select("cluster_id"), on="cluster_id")
        flags.append(nodes.join(reasons, on="cluster_id").select(
            "unique_id", pl.col("cluster_id").alias("cluster_key"), "reason", pl.lit("split").alias("action")))
        clusters = clusters.join(remap, on="unique_id", how="left").select(
            "unique_id", pl.coalesce("new_cluster_id", "cluster_id").alias("cluster_id"))

    con.register("_final", clusters)
    try:
        dob = con.sql(
            f"""
            select f.unique_id, f.cluster_id as cluster_key, 'date_of_birth_conflict' as reason, 'flagged' as action
            from _final as f
            semi join (
                select f.cluster_id
                from _final as f join {nodes_table} as n using (unique_id)
                group by f.cluster_id
                having date_diff('day', min(n.date_of_birth), max(n.date_of_birth)) > {DOB_SPREAD_DAYS}
            ) as wide using (cluster_id)
            """
        ).pl()
    finally:
        con.unregister("_final")
    flags.append(dob)
    con.execute("drop table if exists _cluster")
    return Clustering(clusters, pl.concat(flags))
