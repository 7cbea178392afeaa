"""The small city the practitioner tests share (no tests here; imported by tests/test_practitioner*.py; the
session fixture `practitioner_city` that builds it once lives in tests/conftest.py — a fixture imported into
several test modules is a separate fixture in each, and the city was built three times).

A synthetic city with one health record marked confidential through its contract (a copy of the contracts
with a `confidential` column on the health extract), a trained and approved model, and one nightly run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import yaml

from pipelines.settings import Settings

SHIELDED_RECORD = ("health", None)  # filled in by the fixture


def _shield_one_health_record(data: Path, contracts: Path) -> str:
    contract_path = contracts / "health.yaml"
    contract = yaml.safe_load(contract_path.read_text(encoding="utf-8"))
    contract["columns"].append("confidential")
    contract["person"]["confidential"] = {"column": "confidential"}
    contract_path.write_text(yaml.safe_dump(contract, sort_keys=False), encoding="utf-8")
    extract = next((data / "landing" / "health").glob("*.parquet"))
    frame = pl.read_parquet(extract)
    # a patient with a name no other patient has, so the exact search below is about one person
    counts = frame.group_by("given_name", "family_name").len()
    unique = frame.join(counts.filter(pl.col("len") == 1), on=["given_name", "family_name"])
    unique = unique.filter(pl.col("birth_date").is_not_null()).sort("patient_id")
    chosen = unique["patient_id"][len(unique) // 2]
    frame = frame.with_columns(pl.when(pl.col("patient_id") == chosen).then(pl.lit("Y")).otherwise(pl.lit("N"))
                               .alias("confidential"))
    frame.write_parquet(extract)
    return chosen


def build_city(data: Path, *, people: int = 1000, seed: int = 17) -> Settings:
    from linkage_models.pipeline import promote, train
    from pipelines.stages import open_warehouse, run_ingest, run_nightly
    from sources.synthetic import CityConfig, generate_city

    generate_city(data, CityConfig(people=people, seed=seed))
    contracts = data / "contracts"
    shutil.copytree(Path(__file__).resolve().parent.parent / "sources" / "contracts", contracts)
    shielded = _shield_one_health_record(data, contracts)
    (data / "shielded_record.txt").write_text(shielded, encoding="utf-8")
    settings = city_settings(data)
    run_ingest(settings)
    con = open_warehouse(settings)
    version = train(con, settings)
    con.close()
    promote(settings, version)
    summary = run_nightly(settings)
    assert summary.ok, summary.failure
    return settings


def city_settings(data: Path, **overrides) -> Settings:
    values = dict(
        data_dir=data, pseudonymisation_key="test-key", contracts_dir=data / "contracts",
        practitioner_database_url=f"sqlite:///{data / 'practitioner' / 'store.sqlite3'}",
        practitioner_sensitive_services=["school nursing"], practitioner_rate_limit_per_minute=100000,
        practitioner_snapshot_poll_seconds=0.5,
    )
    values.update(overrides)
    return Settings(**values)


def shielded_record_id(settings: Settings) -> str:
    return (settings.data_dir / "shielded_record.txt").read_text(encoding="utf-8")
