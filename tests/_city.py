"""A small synthetic city, ingested, with a trained and approved person model: ready for a nightly run."""

from pathlib import Path

from pipelines.settings import Settings


def trained_city(data: Path, *, people: int, seed: int) -> Settings:
    from linkage_models.pipeline import promote, train
    from pipelines.stages import open_warehouse, run_ingest
    from sources.synthetic import CityConfig, generate_city

    generate_city(data, CityConfig(people=people, seed=seed))
    settings = Settings(data_dir=data, pseudonymisation_key="test-key")
    run_ingest(settings)
    con = open_warehouse(settings)
    version = train(con, settings)
    con.close()
    promote(settings, version)
    return settings


def generated_city(tmp_path_factory, *, people: int, seed: int) -> Path:
    """A synthetic city's files (landing, reference, truth), generated once into a temporary folder."""
    from sources.synthetic import CityConfig, generate_city

    out = tmp_path_factory.mktemp("city")
    generate_city(out, CityConfig(people=people, seed=seed))
    return out


def landing_copy(city: Path, tmp_path: Path) -> Settings:
    """Settings over a fresh data folder holding a copy of the city's landing extracts (nothing ingested)."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(city / "landing", data / "landing")
    return Settings(data_dir=data)


def read_sql(settings: Settings, sql: str, params=()) -> list[tuple]:
    """Rows of one query on the warehouse, opened read-only and closed again."""
    import duckdb

    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()
