"""Prefect flows: thin wrappers that call the plain stage functions in pipelines/stages.py.

- `nightly`: ingest (one task per source, concurrently, retried on I/O errors; an unchanged extract is
  recognised by its checksum and recorded as such) → link → publish → report, with a markdown summary and tables as artifacts. A failed stage
  fails the run, names the stage and source, and leaves the published snapshot untouched.
- `train_person_model`: trains and saves a new person model version (never promoted automatically).
- `demo`: builds the synthetic city, trains and promotes a model, then runs `nightly`.

Artifacts and logs carry counts, source names and ids only — never personal data.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

import warehouse
from pipelines import stages
from pipelines.settings import Settings, get_settings
from sources._contract import load_contracts


def _settings(data_dir: str | None, landing: str | None = None, contracts: str | None = None) -> Settings:
    settings = get_settings().with_overrides(data_dir=data_dir and Path(data_dir), landing_dir=landing and Path(landing),
                                             contracts_dir=contracts and Path(contracts))
    settings.protect_data()
    return settings


# Results are not persisted (persist_result=False on every task and flow): a persisted result or a pickled
# exception is a file outside the warehouse that erasure and retention do not reach. Tasks return counts and
# ids only, and any error leaves a task as a StageFailure whose message holds no personal data.
# Ingest is not cached by Prefect either: the ingest itself recognises an unchanged extract by its ingest key
# (checksum within its source + contract + settings + code version + erasure blocks, sources/_load.ingest_key)
# and records it in the manifest, while a Prefect cache hit would skip that audit row, need a persisted result,
# and not see the warehouse it depends on (issue 13, item 9).
@task(retries=2, retry_delay_seconds=10, retry_condition_fn=stages.retry_on_io_error, persist_result=False,
      task_run_name="ingest-{source}")
def ingest_source(settings: Settings, source: str, run_id: str) -> stages.SourceLoad:
    with stages.stage_errors("ingest"):
        return stages.ingest_one(settings, source, run_id)


@flow(name="ingest", task_runner=ThreadPoolTaskRunner(max_workers=2), persist_result=False)
def ingest(data_dir: str | None = None, landing: str | None = None, contracts: str | None = None) -> list[dict]:
    """Ingest every source: one task per source, concurrently, retried on I/O errors.

    Args:
        data_dir: Root of everything familylink writes (warehouse, snapshots, reports). Empty: the settings file
            or FAMILYLINK_DATA_DIR (default ./data).
        landing: Folder of agency extracts. Empty: <data_dir>/landing.
        contracts: Folder of source contracts (one YAML per agency). Empty: sources/contracts.
    """
    settings = _settings(data_dir, landing, contracts)
    run_id = stages.begin_run(settings, "ingest")
    try:
        sources = sorted(load_contracts(settings.contracts_dir))
        loads = [f.result() for f in [ingest_source.submit(settings, source, run_id) for source in sources]]
        stages.publish_data_docs(settings, run_id)
    except BaseException as exc:
        stages.end_run(settings, run_id, "failed", "ingest", warehouse.safe_error(exc))
        raise
    failed = [l for l in loads if not l.ok]
    stages.end_run(settings, run_id, "failed" if failed else "completed", "ingest" if failed else None,
                   "; ".join(f"{l.source}: {l.status}" for l in failed) or None)
    table = stages.NightlySummary(run_id, loads=loads).source_table
    create_table_artifact(table, key="familylink-ingest", description="rows read, staged and quarantined per source")
    if failed:
        raise stages.StageFailure("ingest", "; ".join(f"source {l.source} {l.status}: {l.message}" for l in failed))
    return table


@task(task_run_name="link", persist_result=False)
def link(settings: Settings, run_id: str) -> stages.LinkSummary:
    return stages.run_link(settings, run_id)


@task(task_run_name="publish", persist_result=False)
def publish(settings: Settings, run_id: str, model_version: str) -> stages.PublishSummary:
    with stages.stage_errors("publish"):
        # made current by end_run, with the run's completion
        return stages.run_publish(settings, run_id, model_version, switch=False)


@task(task_run_name="report", persist_result=False)
def report(settings: Settings, run_id: str) -> Path:
    return stages.run_report(settings, run_id)


@flow(name="nightly", task_runner=ThreadPoolTaskRunner(max_workers=2), log_prints=False, persist_result=False)
def nightly(data_dir: str | None = None, landing: str | None = None, contracts: str | None = None) -> dict:
    """The nightly run: ingest → link → publish → report. Nothing changed: no new snapshot.

    Args:
        data_dir: Root of everything familylink writes (warehouse, snapshots, reports). Empty: the settings file
            or FAMILYLINK_DATA_DIR (default ./data).
        landing: Folder of agency extracts. Empty: <data_dir>/landing.
        contracts: Folder of source contracts (one YAML per agency). Empty: sources/contracts.
    """
    logger = get_run_logger()
    settings = _settings(data_dir, landing, contracts)
    run_id = stages.begin_run(settings, "nightly")
    try:
        sources = sorted(load_contracts(settings.contracts_dir))
        futures = [ingest_source.submit(settings, source, run_id) for source in sources]
        loads = [f.result() for f in futures]
        stages.check_loads(loads, settings)
        linked = link(settings, run_id)
        published = publish(settings, run_id, linked.model_version)
        report_path = report(settings, run_id)
    except stages.StageFailure as exc:
        stages.end_run(settings, run_id, "failed", exc.stage, str(exc))
        create_markdown_artifact(stages.failure_markdown(run_id, exc), key="familylink-nightly-summary",
                                 description="familylink nightly run failed")
        logger.error("nightly run %s failed at %s: %s", run_id, exc.stage, exc)
        raise
    except BaseException as exc:
        stages.end_run(settings, run_id, "failed", "unknown", warehouse.safe_error(exc))
        raise
    published.expired = stages.end_run(settings, run_id, "completed", snapshot_id=published.to_make_current)
    if published.to_make_current:
        stages.prepare_practitioner(settings)
    stages.finalise_report(report_path, "completed", published)
    summary = stages.nightly_summary(settings, run_id, loads, linked, published, report_path)
    create_markdown_artifact(summary.markdown, key="familylink-nightly-summary",
                             description="familylink nightly run summary (counts only)")
    create_table_artifact(summary.source_table, key="familylink-sources", description="rows per source")
    create_table_artifact(summary.count_table, key="familylink-counts", description="graph and golden counts")
    if published.cohorts:  # issue 16: programme cohorts evaluated after publishing (counts only)
        create_markdown_artifact(published.cohorts.markdown, key="familylink-cohorts",
                                 description="programme cohorts, needs and costs (counts only)")
    if published.unchanged_from:
        logger.info("nightly run %s completed: nothing changed, %s stays published (no new snapshot)", run_id,
                    published.unchanged_from)
    else:
        logger.info("nightly run %s completed: snapshot %s published", run_id, published.snapshot_id)
    return summary.as_dict()


@flow(name="train-person-model", persist_result=False)
def train_person_model(data_dir: str | None = None) -> str:
    """Train a new person model version on the current staging data; promotion is a separate, explicit step.

    Args:
        data_dir: Root of everything familylink writes (warehouse, snapshots, reports). Empty: the settings file
            or FAMILYLINK_DATA_DIR (default ./data).
    """
    settings = _settings(data_dir)
    version = stages.run_train(settings)
    get_run_logger().info("trained person model version %s (not promoted)", version)
    return version


@flow(name="demo", persist_result=False)
def demo(data_dir: str | None = None, people: int = 20000, seed: int = 42) -> dict:
    """Synthetic city → train → promote → nightly, for trying familylink end to end.

    Args:
        data_dir: Root of everything familylink writes (warehouse, snapshots, reports). Empty: the settings file
            or FAMILYLINK_DATA_DIR (default ./data).
        people: Residents of the synthetic city (20,000 makes about 33,000 agency records).
        seed: Random seed: the same seed builds the same city.
    """
    settings = _settings(data_dir)
    stages.run_synth(settings, people=people, seed=seed)
    stages.ensure_demo_model(settings)
    return nightly(data_dir=str(settings.data_dir))
