"""The audit export (IG officers only); the export itself is audited."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from practitioner.audit.dependencies import Audit
from practitioner.audit.service import export_csv
from practitioner.auth.dependencies import IgOfficer

router = APIRouter()


@router.get("/audit/export.csv")
def export(request: Request, principal: IgOfficer, audit: Audit):
    audit("export", detail="audit exported")
    body = export_csv(request.app.state.context.engine)
    return Response(body, media_type="text/csv",
                    headers={"Content-Disposition": "attachment; filename=familylink-audit.csv"})
