"""The FastAPI application: routers per domain, templates, security middleware, snapshot watcher."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from practitioner._context import ServiceContext, ServiceRules
from practitioner._index import IndexHolder, SnapshotUnavailable
from practitioner._security import RateLimiter, SecurityMiddleware
from practitioner._store import open_store
from practitioner.audit.service import AuditWriter
from practitioner.auth.dependencies import SESSION_COOKIE, RedirectTo
from practitioner.auth.service import seed_roles

log = logging.getLogger("familylink.practitioner")
_HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(_HERE / "templates"))


def rules_from_settings(settings) -> ServiceRules:
    return ServiceRules(
        idle_minutes=settings.practitioner_session_minutes, max_hours=settings.practitioner_session_max_hours,
        secure_cookies=settings.practitioner_secure_cookies, lockout_attempts=settings.practitioner_lockout_attempts,
        lockout_minutes=settings.practitioner_lockout_minutes,
        rate_limit_per_minute=settings.practitioner_rate_limit_per_minute,
        unusual_views_per_day=settings.practitioner_unusual_views_per_day,
        sensitive_services=list(settings.practitioner_sensitive_services),
        purposes=list(settings.practitioner_purposes), match_threshold=settings.match_threshold,
        alert_webhook=settings.practitioner_alert_webhook, alert_email=settings.practitioner_alert_email,
        smtp_host=settings.practitioner_smtp_host, smtp_port=settings.practitioner_smtp_port,
        oidc_issuer=settings.practitioner_oidc_issuer, oidc_client_id=settings.practitioner_oidc_client_id,
        oidc_client_secret=settings.practitioner_oidc_client_secret)


def build_context(settings, *, follow: bool = False, linker=None, links: bool = False) -> ServiceContext:
    """Everything the service needs, from Settings (also used by the CLI and tests without HTTP).

    `follow=False` (one process, or the linker process): this process builds each snapshot's index file,
    reconciles referrals and links them itself. `follow=True` (a web worker of `familylink serve`): it serves
    the snapshot the linker process names, fills its overlay from the store, and sends referrals to `linker`.
    `follow=True, links=True`: a further linker process — it follows like a worker and builds the real-time
    linker for each snapshot it opens (the coordinator alone reconciles).
    """
    from practitioner.referrals.service import RealTimeLinker, ReferralError, approved_model_path, reconcile, sync_overlay

    engine = open_store(settings.practitioner_store_url)
    seed_roles(engine)
    models_dir = Path(settings.models)

    def build_linker(old, new) -> None:
        # before the new index serves: build the real-time linker (term frequencies, blocking keys, the compiled
        # scoring statement) so no practitioner's referral waits for it
        try:
            new.linker = RealTimeLinker(new, approved_model_path(models_dir),
                                        build_memory_limit=settings.duckdb_memory_limit)
        except ReferralError as exc:
            log.warning("real-time linking unavailable until a model is approved: %s", exc.__class__.__name__)

    def on_switch(old, new) -> None:
        build_linker(old, new)
        reconcile(engine, old, new)  # then settle referrals against the new snapshot

    holder = IndexHolder(settings.snapshots, memory_limit=settings.duckdb_memory_limit,
                         threads=settings.duckdb_threads,
                         on_switch=(build_linker if links else None) if follow else on_switch,
                         index_dir=settings.practitioner_index_dir, follow=follow,
                         sync=lambda index: sync_overlay(engine, index),
                         worker_memory_limit=settings.practitioner_worker_memory_limit, links=links or not follow)
    return ServiceContext(engine=engine, index=holder, audit=AuditWriter(engine), rules=rules_from_settings(settings),
                          contracts_dir=Path(settings.contracts_dir), models_dir=Path(settings.models), linker=linker)


def create_app(settings, *, context: ServiceContext | None = None, watch: bool = True) -> FastAPI:
    from practitioner.audit.router import router as audit_router
    from practitioner.auth.router import router as auth_router
    from practitioner.ig.router import router as ig_router
    from practitioner.person.router import router as person_router
    from practitioner.referrals.router import router as referrals_router
    from practitioner.search.router import router as search_router

    ctx = context or build_context(settings)
    stop = threading.Event()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            ctx.index.refresh()
        except SnapshotUnavailable:
            pass  # pages say so until a snapshot is published
        if watch:
            ctx.index.watch(settings.practitioner_snapshot_poll_seconds, stop)
        yield
        stop.set()

    app = FastAPI(title="familylink — who else is involved", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.context = ctx
    app.state.templates = templates
    app.add_middleware(SecurityMiddleware, limiter=RateLimiter(ctx.rules.rate_limit_per_minute, engine=ctx.engine),
                       session_cookie=SESSION_COOKIE, secure=ctx.rules.secure_cookies)
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")
    for router in (auth_router, search_router, person_router, referrals_router, audit_router, ig_router):
        app.include_router(router)

    @app.exception_handler(RedirectTo)
    async def _redirect(request: Request, exc: RedirectTo):
        return RedirectResponse(exc.location, status_code=303)

    @app.exception_handler(SnapshotUnavailable)
    async def _no_snapshot(request: Request, exc: SnapshotUnavailable):
        return templates.TemplateResponse(request, "message.html", {"title": "Index not available",
                                          "message": str(exc)}, status_code=503)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        return templates.TemplateResponse(request, "message.html", {"title": f"Refused ({exc.status_code})",
                                          "message": exc.detail}, status_code=exc.status_code)

    @app.get("/", response_class=HTMLResponse)
    def home():
        return RedirectResponse("/search", status_code=303)

    return app
