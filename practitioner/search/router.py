"""GET the search form; POST a search (terms in the body, never in a URL or a log). Every search is audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from practitioner.audit.dependencies import Audit
from practitioner.auth.dependencies import CsrfChecked, PurposeStated
from practitioner.search import service
from practitioner.search.dependencies import Index
from practitioner.search.schemas import SearchQuery

router = APIRouter()


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, principal: PurposeStated, index: Index):
    return request.app.state.templates.TemplateResponse(request, "search.html", {
        "principal": principal, "query": SearchQuery(), "results": None, "snapshot": index.snapshot_id})


@router.post("/search", response_class=HTMLResponse)
def search(request: Request, principal: PurposeStated, _csrf: CsrfChecked, index: Index, audit: Audit,
           name: Annotated[str, Form(max_length=200)] = "", date_of_birth: Annotated[str, Form(max_length=20)] = "",
           postcode: Annotated[str, Form(max_length=10)] = "", address: Annotated[str, Form(max_length=200)] = "",
           identifier: Annotated[str, Form(max_length=40)] = ""):
    query = SearchQuery(name=name, date_of_birth=date_of_birth, postcode=postcode, address=address, identifier=identifier)
    try:
        parsed, results = service.search(index, query)
    except ValueError as exc:
        return request.app.state.templates.TemplateResponse(request, "search.html", {
            "principal": principal, "query": query, "results": None, "error": str(exc), "snapshot": index.snapshot_id},
            status_code=400)
    audit("search", fields=",".join(parsed.fields), person_ids=[r.person_id for r in results],
          detail=f"snapshot={index.snapshot_id} results={len(results)}")
    return request.app.state.templates.TemplateResponse(request, "search.html", {
        "principal": principal, "query": query, "results": results, "snapshot": index.snapshot_id})
