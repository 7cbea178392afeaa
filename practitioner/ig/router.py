"""The IG page: views per user, break-glass events and the review queue, unusual volumes, chain check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from practitioner.audit.dependencies import Audit
from practitioner.audit.service import recent_events, verify_chain
from practitioner.auth.dependencies import CsrfChecked
from practitioner.ig import service
from practitioner.ig.dependencies import IgOfficer

router = APIRouter()


@router.get("/ig", response_class=HTMLResponse)
def ig_page(request: Request, principal: IgOfficer):
    ctx = request.app.state.context
    return request.app.state.templates.TemplateResponse(request, "ig.html", {
        "principal": principal, "overview": service.overview(ctx.engine, ctx.rules),
        "open_alerts": service.alerts(ctx.engine, status="open"),
        "reviewed": service.alerts(ctx.engine, status="reviewed", limit=50),
        "events": recent_events(ctx.engine, limit=100), "chain": verify_chain(ctx.engine)})


@router.post("/ig/alerts/{alert_id}/review")
def review(request: Request, principal: IgOfficer, _csrf: CsrfChecked, audit: Audit, alert_id: int,
           outcome: Annotated[str, Form(max_length=1000)] = ""):
    if len(outcome.strip()) < 3:
        raise HTTPException(status_code=400, detail="Record the review outcome.")
    try:
        service.review_alert(request.app.state.context.engine, alert_id, reviewer=principal.username,
                             outcome=outcome.strip())
    except KeyError:
        raise HTTPException(status_code=404, detail="No such open alert.") from None
    audit("ig_review", detail=f"alert={alert_id}")
    return RedirectResponse("/ig", status_code=303)


@router.post("/ig/consent")
def consent(request: Request, principal: IgOfficer, _csrf: CsrfChecked, audit: Audit,
            person_id: Annotated[str, Form(max_length=40)], service_name: Annotated[str, Form(max_length=200)],
            basis: Annotated[str, Form(max_length=500)]):
    if len(basis.strip()) < 3 or len(service_name.strip()) < 2:
        raise HTTPException(status_code=400, detail="Give the service and the basis of consent.")
    service.record_consent(request.app.state.context.engine, person_id=person_id, service=service_name.strip(),
                           recorded_by=principal.username, basis=basis.strip())
    audit("consent", person_ids=[person_id], detail="consent recorded for a sensitive service")
    return RedirectResponse("/ig", status_code=303)
