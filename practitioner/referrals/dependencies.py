"""Who may post referrals: roles with the `referrals` right."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException

from practitioner.auth.dependencies import PurposeStated
from practitioner.auth.service import Principal


async def may_refer(principal: PurposeStated) -> Principal:
    if not principal.role.referrals:
        raise HTTPException(status_code=403, detail="Your role cannot post referrals.")
    return principal


Referrer = Annotated[Principal, Depends(may_refer)]
