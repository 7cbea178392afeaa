"""The synthetic city's measured rates of each real-data phenomenon, for the table in docs/synthetic-city.md.

    .venv/bin/python benchmarks/city_rates.py --people 20000          # build the default city and measure it
    .venv/bin/python benchmarks/city_rates.py --data-dir data          # measure an existing city

Reads only the city's own files (ground truth and extracts); prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def measure(data: Path) -> list[tuple[str, str]]:
    truth = pl.read_parquet(data / "truth" / "records.parquet")
    persons = pl.read_parquet(data / "truth" / "persons.parquet")
    subjects = truth.filter(pl.col("record_role") == "subject")
    has = lambda kind: pl.col("noise").list.contains(kind)  # noqa: E731
    rows: list[tuple[str, str]] = []

    def pct(x: float) -> str:
        return f"{100 * x:.1f}%"

    def rate(frame: pl.DataFrame, expr: pl.Expr) -> float:
        return float(frame.select(expr.cast(pl.Float64).mean()).item() or 0.0)

    as_of = truth["extract_date"].max()
    households = persons.filter(pl.col("role") != "resident").group_by("household_id").agg(
        pl.col("tenure").first(), (pl.col("moved_in") < pl.lit(as_of)).any().alias("moved"))
    rows.append(("households moved in the last three years", pct(rate(households, pl.col("moved")))))
    by_tenure = dict(households.group_by("tenure").agg(pl.col("moved").mean()).iter_rows())
    rows.append(("... private renters / owners", f"{pct(by_tenure.get('private_rent', 0))} / {pct(by_tenure.get('owner', 0))}"))
    health = subjects.filter(pl.col("source") == "health").join(persons.select("person_id", "moved_in"), on="person_id")
    movers = health.filter((pl.col("moved_in") < pl.col("extract_date") - pl.duration(days=182))
                           & (pl.col("moved_in") >= pl.col("extract_date") - pl.duration(days=365)))
    rows.append(("GP records of people who moved 6-12 months ago still at the old address",
                 pct(rate(movers, has("stale_address")))))
    keyed = subjects.filter(pl.col("uprn_recorded").is_not_null()).join(
        persons.select("person_id", "age"), on="person_id")
    pairs = keyed.join(keyed.select("person_id", "source", "uprn_recorded"), on="person_id", suffix="_b").filter(
        pl.col("source") < pl.col("source_b"))
    rows.append(("cross-source record pairs of one person at different addresses",
                 pct(rate(pairs, pl.col("uprn_recorded") != pl.col("uprn_recorded_b")))))
    young = pairs.filter(pl.col("age").is_between(16, 24))
    rows.append(("... of people aged 16-24", pct(rate(young, pl.col("uprn_recorded") != pl.col("uprn_recorded_b")))))
    for source in ("health", "police", "housing", "education", "social_care", "benefits", "probation"):
        frame = subjects.filter(pl.col("source") == source)
        if frame.height:
            rows.append((f"{source}: within-source duplicates / any typo / default or placeholder date of birth",
                         f"{pct(rate(frame, has('duplicate')))} / "
                         f"{pct(rate(frame, pl.col('noise').list.eval(pl.element().str.starts_with('typo_')).list.any()))}"
                         f" / {pct(rate(frame, has('dob_jan1') | has('dob_placeholder')))}"))
    children = persons.filter(pl.col("role") == "child")
    rows.append(("children who are twins or triplets", pct(rate(children, pl.col("is_twin")))))
    rows.append(("GP register rows of people who died or left", pct(rate(subjects.filter(pl.col("source") == "health"),
                                                                         has("deceased_or_left")))))
    police = subjects.filter(pl.col("source") == "police").join(persons.select("person_id", "sex"), on="person_id")
    rows.append(("police nominals who are male", pct(rate(police, pl.col("sex") == "M"))))
    per_person = subjects.group_by("person_id").agg(pl.col("noise").list.len().sum().alias("n")).sort("n", descending=True)
    top = per_person.head(max(1, int(per_person.height * 0.15)))["n"].sum() / max(1, per_person["n"].sum())
    rows.append(("share of all noise carried by the 15% most error-prone people", pct(top)))
    minority = subjects.join(persons.select("person_id", "ethnic_group"), on="person_id")
    rows.append(("records with a name variant (nickname, transliteration, surname convention): "
                 "white British / other groups",
                 f"{pct(rate(minority.filter(pl.col('ethnic_group') == 'british'), has('nickname') | has('transliteration') | has('surname_convention')))} / "
                 f"{pct(rate(minority.filter(pl.col('ethnic_group') != 'british'), has('nickname') | has('transliteration') | has('surname_convention')))}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    if args.data_dir:
        rows = measure(args.data_dir)
    else:
        from sources.synthetic import CityConfig, generate_city

        with tempfile.TemporaryDirectory() as tmp:
            generate_city(Path(tmp), CityConfig(people=args.people, seed=args.seed))
            rows = measure(Path(tmp))
    print("| phenomenon | the city's measured rate |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
