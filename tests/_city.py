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
