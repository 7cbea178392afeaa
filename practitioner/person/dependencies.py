"""The person id in a path, resolved through reconciled provisional ids (a referral's "R…" keeps working)."""

from __future__ import annotations

from fastapi import HTTPException, Request

from practitioner.referrals.service import resolve_person_id


def resolved_person_id(request: Request, person_id: str) -> str:
    if len(person_id) > 40 or not person_id.replace("R", "", 1).isdigit():
        raise HTTPException(status_code=404, detail="No such person.")
    return resolve_person_id(request.app.state.context.engine, person_id)
