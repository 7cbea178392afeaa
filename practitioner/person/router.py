"""The person page, and break-glass. Every view and every refusal is audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from practitioner.audit.dependencies import Audit
from practitioner.auth.dependencies import CsrfChecked, PurposeStated
from practitioner.ig.service import raise_alert
from practitioner.person import service
from practitioner.person.dependencies import resolved_person_id
from practitioner.search.dependencies import Index

router = APIRouter()


@router.get("/person/{person_id}", response_class=HTMLResponse)
def person_page(request: Request, principal: PurposeStated, index: Index, audit: Audit,
                resolved: Annotated[str, Depends(resolved_person_id)], person_id: str):
    if resolved != person_id:
        return RedirectResponse(f"/person/{resolved}", status_code=303)
    ctx = request.app.state.context
    try:
        access, view = service.person_view(ctx.engine, index, principal, person_id,
                                           sensitive=ctx.rules.sensitive_services, max_hours=ctx.rules.max_hours)
    except service.PersonNotFound:
        raise HTTPException(status_code=404, detail="No such person in the current index.") from None
    templates = request.app.state.templates
    if access.reason == "shielded":
        audit("view_refused", person_ids=[person_id], detail="shielded")
        return templates.TemplateResponse(request, "shielded.html", {"principal": principal, "person_id": person_id},
                                          status_code=403)
    if not access.allowed:
        audit("view_refused", person_ids=[person_id], detail="no legitimate relationship")
        return templates.TemplateResponse(request, "refused.html", {"principal": principal, "person_id": person_id},
                                          status_code=403)
    shown = [person_id] + [m.person_id for m in view.household]
    audit("view", person_ids=shown, detail=f"access={access.reason} snapshot={index.snapshot_id}")
    return templates.TemplateResponse(request, "person.html", {"principal": principal, "person": view})


@router.post("/person/{person_id}/break-glass")
def break_glass(request: Request, principal: PurposeStated, _csrf: CsrfChecked, index: Index, audit: Audit,
                person_id: str, reason: Annotated[str, Form(max_length=1000)] = ""):
    ctx = request.app.state.context
    if not principal.role.break_glass:
        raise HTTPException(status_code=403, detail="Your role cannot break glass. Ask your manager or the IG team.")
    if len(reason.strip()) < 10:
        raise HTTPException(status_code=400, detail="State the reason for breaking glass (at least 10 characters).")
    try:
        person = service.get_person(index, person_id)
    except service.PersonNotFound:
        raise HTTPException(status_code=404, detail="No such person in the current index.") from None
    if person["shielded"]:
        raise HTTPException(status_code=403, detail="This record is shielded: break-glass does not apply. Contact "
                                                    "is brokered by the record's manager through the IG team.")
    seq = audit("break_glass", person_ids=[person_id], detail="reason recorded in the alert for IG review")
    raise_alert(ctx.engine, ctx.rules, kind="break_glass", username=principal.username, person_id=person_id,
                reason=reason.strip(), audit_seq=seq)
    return RedirectResponse(f"/person/{person_id}", status_code=303)
