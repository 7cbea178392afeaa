"""What every request can reach: the store, the index, the audit writer, alerts and the service's rules.

Built once by `create_app` from Settings (passed down, never read from the environment here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from practitioner._index import IndexHolder
from practitioner.audit.service import AuditWriter


@dataclass
class ServiceRules:
    idle_minutes: int = 30
    max_hours: int = 10
    secure_cookies: bool = False
    lockout_attempts: int = 5
    lockout_minutes: int = 15
    rate_limit_per_minute: int = 120
    unusual_views_per_day: int = 50
    sensitive_services: list[str] = field(default_factory=list)
    purposes: list[str] = field(default_factory=list)
    match_threshold: float = 0.99
    alert_webhook: str | None = None
    alert_email: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None


@dataclass
class ServiceContext:
    engine: Engine
    index: IndexHolder
    audit: AuditWriter
    rules: ServiceRules
    contracts_dir: Path
    models_dir: Path
    linker: object | None = None  # practitioner._linker.LinkerClient when a linker process links referrals
