"""Post a referral in a source contract's shape; it is linked at once and audited."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from practitioner._linker import LinkerUnavailable
from practitioner.audit.dependencies import Audit
from practitioner.auth.dependencies import CsrfChecked
from practitioner.referrals import service
from practitioner.referrals.dependencies import Referrer
from practitioner.search.dependencies import Index

router = APIRouter()


def _sources(request: Request) -> dict[str, list[str]]:
    contracts = service.contracts(request.app.state.context.contracts_dir)
    return {name: service.contract_columns(c) for name, c in sorted(contracts.items())}


@router.get("/referrals", response_class=HTMLResponse)
def referral_page(request: Request, principal: Referrer, source: str | None = None):
    sources = _sources(request)
    chosen = source if source in sources else None
    return request.app.state.templates.TemplateResponse(request, "referral.html", {
        "principal": principal, "sources": sources, "source": chosen, "outcome": None})


@router.post("/referrals", response_class=HTMLResponse)
async def post_referral(request: Request, principal: Referrer, _csrf: CsrfChecked, index: Index, audit: Audit):
    form = await request.form()
    source = str(form.get("source", ""))
    row = {key.removeprefix("col__"): str(value) for key, value in form.items() if key.startswith("col__")}
    ctx = request.app.state.context
    try:
        if ctx.linker is not None:  # the linker process links; this worker only waits (off the event loop)
            outcome = await run_in_threadpool(ctx.linker.link, contracts_dir=ctx.contracts_dir, source=source, row=row,
                                              received_by=principal.username)
            await run_in_threadpool(ctx.index.sync, index)  # searchable at once through this worker
        else:  # one process: linking is blocking work, off the event loop so other requests keep flowing
            outcome = await run_in_threadpool(
                service.link_referral, ctx.engine, index, contracts_dir=ctx.contracts_dir, models_dir=ctx.models_dir,
                source=source, row=row, received_by=principal.username, threshold=ctx.rules.match_threshold)
    except service.ReferralError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    except LinkerUnavailable:
        raise HTTPException(status_code=503, detail="Real-time linking is not available just now; try again shortly.") from None
    await run_in_threadpool(audit, "referral", person_ids=[outcome.person_id],
          detail=f"source={outcome.source} record_id={outcome.record_id} provisional={outcome.provisional} "
                 f"already_known={outcome.already_known} seconds={outcome.seconds:.3f}")
    sources = await run_in_threadpool(_sources, request)
    return request.app.state.templates.TemplateResponse(request, "referral.html", {
        "principal": principal, "sources": sources, "source": source, "outcome": outcome})
