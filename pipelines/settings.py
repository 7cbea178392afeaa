"""The one place that maps the environment to resources.

Every path, the DuckDB file, the engine (duckdb or spark), thresholds, retention and the
pseudonymisation key come from here.  Values are read, in increasing priority, from the
defaults below, an optional settings file (``familylink.yaml`` in the working directory or the
file named by ``FAMILYLINK_SETTINGS``) and ``FAMILYLINK_*`` environment variables
(``FAMILYLINK_DATA_DIR``, ``FAMILYLINK_ENGINE``, ``FAMILYLINK_MATCH_THRESHOLD``...).
Nothing else in the code base reads environment variables.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A settings file or environment variable is wrong; the message names which."""

    message_is_safe = True  # names files, keys and ids, never values (warehouse.safe_error)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Field(default=Path("data"), description="Root of everything generated.")
    landing_dir: Path | None = Field(default=None, description="Agency extracts; default data/landing.")
    reference_dir: Path | None = Field(default=None, description="Gazetteer (LLPG); default data/reference.")
    contracts_dir: Path = Field(default=_PACKAGE_ROOT / "sources" / "contracts")
    gazetteer_contract: Path = Field(default=_PACKAGE_ROOT / "sources" / "gazetteer" / "nlpg_dtf.yaml",
                                     description="How the council exports its LLPG (NLPG DTF or a flat CSV).")
    expectations_dir: Path = Field(default=_PACKAGE_ROOT / "expectations" / "suites")
    warehouse_path: Path | None = Field(default=None, description="DuckDB file; default data/warehouse/familylink.duckdb.")
    reports_dir: Path | None = Field(default=None, description="Reports; default data/reports.")
    models_dir: Path | None = Field(default=None, description="Trained models; default data/models.")
    snapshots_dir: Path | None = Field(default=None, description="Parquet exports; default data/snapshots.")
    engine: Literal["duckdb", "spark"] = Field(default="duckdb", description="Where the link stage's pairwise work "
                                              "(training, prediction, clustering) runs: DuckDB in the warehouse, or "
                                              "Spark (docs/operations.md, Spark).")
    spark_master: str = Field(default="local[2]", description="Spark master URL: local[N], spark://host:7077, yarn, "
                              "k8s://...; an active SparkSession in the process is used as it is.")
    spark_driver_memory: str = Field(default="2g", pattern=r"^[0-9]{1,6}[kmgtKMGT]$")
    spark_executor_memory: str | None = Field(default=None, pattern=r"^[0-9]{1,6}[kmgtKMGT]$",
                                              description="Per executor on a cluster; default Spark's own.")
    spark_shuffle_partitions: int = Field(default=8, ge=1, le=100_000, description="spark.sql.shuffle.partitions: "
                                          "2-3 per executor core (8 on local[2]; ~2000 for 100M records).")
    spark_checkpoint_dir: Path | None = Field(default=None, description="Checkpoints and the Parquet exchanged "
                                              "with the warehouse, deleted after each step; default data/spark. "
                                              "On a cluster: a mount every executor and this machine share.")
    spark_conf: dict[str, str] = Field(default_factory=dict, description="Any other Spark properties "
                                       "(spark.driver.host, spark.executor.cores...); JSON in FAMILYLINK_SPARK_CONF.")
    match_threshold: float = Field(default=0.99, gt=0, lt=1)
    max_row_count_drop: float = Field(default=0.5, ge=0, le=1, description="Largest share an extract may shrink by against the last good load.")
    max_row_count_growth: float = Field(default=10.0, ge=1, description="How many times larger than the last good "
                                        "load an extract may be before it is rejected.")
    missing_extract_policy: Literal["stop", "publish_last_good"] = Field(
        default="stop", description="When an agency's extract is missing: stop the run before linking (nothing is "
        "published), or link and publish the other agencies' new data with the missing agency's last good data, "
        "marked as such in the run summary, audit.run and the snapshot manifest.")
    snapshot_retention_days: int = Field(default=30, ge=0)
    accuracy_target_precision: float = Field(
        default=0.995, gt=0, le=1, description="The council's accepted share of links that join the same person "
        "(0.995: at most about 5 in 1,000 links join two different people); the run report says whether a run meets it.")
    accuracy_target_recall: float = Field(
        default=0.95, gt=0, le=1, description="The council's accepted share of same-person pairs of records that are "
        "linked (0.95: at most about 5 in 100 left apart); the run report says whether a run meets it.")
    pseudonymisation_key: str | None = Field(default=None, description="Secret for keyed-hash ids; never committed.")
    duckdb_memory_limit: str = Field(default="6GB", pattern=r"^[0-9]{1,6}(\.[0-9]{1,3})?\s?([KMGTkmgt][iI]?[Bb]|%)$",
                                     description="DuckDB memory limit: 6GB, 512MiB or 80%.")
    duckdb_threads: int = Field(default=2, ge=1, le=256)
    failure_webhook: str | None = Field(
        default=None, description="URL that receives a JSON POST when a Prefect flow run of familylink fails or "
        "crashes (a Prefect automation with a Custom Webhook block, created by `make serve`; Teams, Slack and most "
        "alerting tools accept one). The message names the flow, the run and its state message: never personal data.")
    shared_group: str | None = Field(default=None, description="A group that may read and write the data folder; "
                                     "by default everything familylink writes is readable by its owner only.")
    analysts_group: str | None = Field(default=None, description="The analysts' group: it may read the published "
                                       "snapshots (analysts.duckdb, Parquet, `current`) and nothing else. The "
                                       "snapshots folder is given to this group, read-only; the working warehouse "
                                       "stays owner-only (or shared_group). Must not be shared_group.")

    # --- programme cohorts, needs and costs (programmes/, issue 16) ---
    programmes_dir: Path | None = Field(default=None, description="Programme rule files (YAML, one per programme and "
                                        "version); default the shipped programmes/rules.")
    unit_costs_path: Path | None = Field(default=None, description="Unit costs (YAML); default programmes/unit_costs.yaml.")
    cost_price_year: int | None = Field(default=None, ge=1990, le=2100, description="Price year costs are uplifted to; "
                                        "default the snapshot's year.")

    # --- practitioner service (practitioner/, `familylink serve`) ---
    practitioner_database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the service's own store; default SQLite data/practitioner/store.sqlite3. "
        "PostgreSQL: postgresql+psycopg://user@host/db.")
    practitioner_host: str = "127.0.0.1"
    practitioner_port: int = 8400
    practitioner_session_minutes: int = Field(default=30, ge=1, description="Idle minutes before a session expires.")
    practitioner_session_max_hours: int = Field(default=10, ge=1, description="Absolute session lifetime.")
    practitioner_secure_cookies: bool = Field(default=False, description="Set true behind HTTPS.")
    practitioner_lockout_attempts: int = Field(default=5, ge=1)
    practitioner_lockout_minutes: int = Field(default=15, ge=1)
    practitioner_rate_limit_per_minute: int = Field(default=120, ge=1, description="Requests per user (or address) per minute.")
    practitioner_unusual_views_per_day: int = Field(default=50, ge=1, description="Views per user per day the IG page flags.")
    practitioner_sensitive_services: list[str] = Field(
        default=["sexual health", "mental health", "camhs", "substance misuse", "drug and alcohol"],
        description="Services (matched case-insensitively as substrings) hidden unless consent is recorded.")
    practitioner_purposes: list[str] = Field(
        default=["Safeguarding enquiry", "Referral or assessment", "Planning support with other agencies",
                 "Emergency contact"], description="Purposes of access offered at the start of a session.")
    practitioner_alert_webhook: str | None = Field(default=None, description="URL receiving a JSON POST per alert.")
    practitioner_alert_email: str | None = Field(default=None, description="Privacy officer's address for alerts.")
    practitioner_smtp_host: str | None = None
    practitioner_smtp_port: int = 25
    practitioner_oidc_issuer: str | None = Field(default=None, description="OIDC issuer URL; enables single sign-on.")
    practitioner_oidc_client_id: str | None = None
    practitioner_oidc_client_secret: str | None = None
    practitioner_snapshot_poll_seconds: float = Field(default=5.0, gt=0, description="How often to look for a newer snapshot.")
    practitioner_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64,
                                      description="Web worker processes of `familylink serve` (default: the CPU count); "
                                      "they share one read-only index file per snapshot; linker processes link referrals.")
    practitioner_linkers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64,
                                      description="Linker processes of `familylink serve` (default: the CPU count); "
                                      "referrals are linked in parallel, decisions committed in order under one lock.")
    practitioner_worker_memory_limit: str = Field(default="1GB", pattern=r"^[0-9]{1,6}(\.[0-9]{1,3})?\s?([KMGTkmgt][iI]?[Bb]|%)$",
                                                  description="DuckDB memory limit of each web worker's index connection.")
    practitioner_prepare_on_publish: bool | None = Field(
        default=None, description="Build the practitioner service's files for each snapshot published (`familylink "
        "serve --prepare`) so the service switches and starts on them at once. Unset: only where the service is set "
        "up (its store exists or practitioner_database_url is set).")

    @property
    def practitioner_index_dir(self) -> Path:
        """The service's index files, one read-only DuckDB file per snapshot (built by the service, not the nightly)."""
        return self.data_dir / "practitioner" / "index"

    @field_validator("spark_conf", mode="before")
    @classmethod
    def _json_mapping(cls, value: object) -> object:
        import json

        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except ValueError:
                raise ValueError("expected a JSON object of Spark property names to values") from None
        return value

    @field_validator("practitioner_sensitive_services", "practitioner_purposes", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _analysts_are_not_the_data_team(self) -> "Settings":
        if self.analysts_group and self.analysts_group == self.shared_group:
            raise ValueError("analysts_group must differ from shared_group: the shared group reads the working "
                             "warehouse, which the analysts' role must not")
        return self

    @property
    def practitioner_store_url(self) -> str:
        return self.practitioner_database_url or f"sqlite:///{self.practitioner_store_file}"

    @property
    def practitioner_store_file(self) -> Path:
        """The service's default SQLite store (used unless practitioner_database_url is set)."""
        return self.data_dir / "practitioner" / "store.sqlite3"

    @property
    def landing(self) -> Path:
        return self.landing_dir or self.data_dir / "landing"

    @property
    def reference(self) -> Path:
        return self.reference_dir or self.data_dir / "reference"

    @property
    def warehouse(self) -> Path:
        return self.warehouse_path or self.data_dir / "warehouse" / "familylink.duckdb"

    @property
    def spark_checkpoints(self) -> Path:
        return self.spark_checkpoint_dir or self.data_dir / "spark"

    @property
    def reports(self) -> Path:
        return self.reports_dir or self.data_dir / "reports"

    @property
    def models(self) -> Path:
        return self.models_dir or self.data_dir / "models"

    @property
    def snapshots(self) -> Path:
        return self.snapshots_dir or self.data_dir / "snapshots"

    @property
    def truth(self) -> Path:
        """Ground truth of the synthetic city: read by evaluation and tests only, never by the pipeline."""
        return self.data_dir / "truth"

    def pseudonymisation_key_bytes(self) -> bytes:
        """The secret for keyed-hash pseudonyms: from configuration, or a random per-installation key
        created once under data_dir/secrets (mode 0600). It never goes in the repository."""
        if self.pseudonymisation_key:
            return self.pseudonymisation_key.encode("utf-8")
        path = self.data_dir / "secrets" / "pseudonymisation.key"
        if not path.exists():
            import secrets

            path.parent.mkdir(parents=True, exist_ok=True)
            path.parent.chmod(0o700)
            path.write_text(secrets.token_hex(32), encoding="ascii")
            path.chmod(0o600)
        return path.read_text(encoding="ascii").strip().encode("ascii")

    def _group_id(self, name: str | None, setting: str) -> int | None:
        import grp

        if not name:
            return None
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            raise SettingsError(f"{setting}: no such group on this machine") from None

    def _path_to_snapshots(self) -> list[Path]:
        """The folders from the data folder down to the snapshots folder's parent, when it lies inside it."""
        data, snapshots = self.data_dir.resolve(), self.snapshots.resolve()
        if data not in snapshots.parents:
            return []
        return [data, *(p for p in snapshots.parents if data in p.parents)]

    def protect_data(self) -> int:
        """Owner-only (or owner and `shared_group`) permissions for everything that holds personal data.

        Sets the process umask (0o077, or 0o007 with a shared group) so every file and folder familylink, its
        libraries and its child processes (a Prefect server started from here) create is private, then checks
        the data folder and the configured folders outside it and removes any wider permission found.
        With `analysts_group` the published snapshots are then shared read-only with that group
        (`share_published`). Returns how many paths were tightened. Called at start-up by the CLI, the flows and
        every run.
        """
        gid = self._group_id(self.shared_group, "shared_group")
        os.umask(0o007 if gid is not None else 0o077)
        too_wide = 0o007 if gid is not None else 0o077
        roots = {self.data_dir, self.landing, self.reference, self.warehouse.parent, self.reports, self.models,
                 self.snapshots, self.spark_checkpoints}
        self.data_dir.mkdir(parents=True, exist_ok=True)
        shared = self.analysts_group is not None
        published = self.snapshots.resolve()
        # analysts may pass through (search, never list or read) the folders leading to the snapshots folder
        passage = set(self._path_to_snapshots()) if shared else set()
        tightened = 0
        seen: set[Path] = set()
        for root in sorted(roots):
            if not root.exists():
                continue
            for folder, dirs, files in os.walk(root):
                if shared and Path(folder).resolve() == published:
                    dirs.clear()  # share_published sets the snapshots folder's own modes
                    continue
                for path in [Path(folder), *(Path(folder) / f for f in files)]:
                    if path in seen or path.is_symlink():
                        continue
                    seen.add(path)
                    mode = path.stat().st_mode & 0o777
                    if gid is not None and path.stat().st_gid != gid:
                        os.chown(path, -1, gid)
                    allowed = 0o001 if path.resolve() in passage else 0
                    if mode & too_wide & ~allowed:
                        path.chmod(mode & ~(too_wide & ~allowed))
                        tightened += 1
        if shared:
            self.share_published()
        return tightened

    def share_published(self) -> None:
        """Give the published snapshots to `analysts_group`, read-only: folders 2750 (new files and folders keep
        the group), files 0640 (0440 where familylink removed the write bit). The folders leading to the snapshots
        folder inside the data folder get search-only permission for others (o+x: no listing, no reading), since
        everything else in them stays owner-only. Called by `protect_data` and by every run that publishes, so a
        new snapshot is readable by analysts as soon as it is current. Nothing without `analysts_group`."""
        gid = self._group_id(self.analysts_group, "analysts_group")
        if gid is None or not self.snapshots.exists():
            return
        for path in self._path_to_snapshots():
            mode = path.stat().st_mode & 0o7777
            if not mode & 0o001:
                path.chmod(mode | 0o001)
        for folder, _, files in os.walk(self.snapshots):
            for path in [Path(folder), *(Path(folder) / f for f in files)]:
                if path.is_symlink():
                    continue
                info = path.stat()
                if info.st_gid != gid:
                    os.chown(path, -1, gid)
                owner = info.st_mode & 0o700
                wanted = 0o2750 if path.is_dir() else owner | (0o040 if owner & 0o400 else 0)
                if info.st_mode & 0o7777 != wanted:
                    path.chmod(wanted)

    def with_overrides(self, **changes: object) -> "Settings":
        clean = {k: v for k, v in changes.items() if v is not None}
        return self.model_validate({**self.model_dump(), **clean})


_ENV_PREFIX = "FAMILYLINK_"


def load_settings(environ: dict[str, str] | None = None, settings_file: Path | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    values: dict[str, object] = {}
    path = settings_file or Path(env.get(_ENV_PREFIX + "SETTINGS", "familylink.yaml"))
    if path.exists():
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise SettingsError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
        if not isinstance(loaded, dict):
            raise SettingsError(f"{path}: expected a mapping of setting names to values")
        values.update(loaded)
    for name in Settings.model_fields:
        key = _ENV_PREFIX + name.upper()
        if key in env:
            values[name] = env[key]
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SettingsError(f"settings ({path} and {_ENV_PREFIX}* variables): {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
