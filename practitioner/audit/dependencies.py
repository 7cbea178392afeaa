"""The audit writer every route receives: routes call `audit(action, ...)` and the actor is filled in."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Request

from practitioner.auth.dependencies import CurrentUser
from practitioner.audit.service import Actor


class AuditFn(Protocol):
    def __call__(self, action: str, *, person_ids: list[str] | None = None, fields: str | None = None,
                 detail: str | None = None) -> int: ...


async def get_audit(request: Request, principal: CurrentUser) -> AuditFn:
    writer = request.app.state.context.audit

    def audit(action: str, *, person_ids=None, fields=None, detail=None) -> int:
        actor = Actor(principal.username, principal.role.name, principal.agency, principal.purpose)
        return writer.write(actor, action, person_ids=person_ids, fields=fields, detail=detail)

    return audit


Audit = Annotated[AuditFn, Depends(get_audit)]
