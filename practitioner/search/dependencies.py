"""The index a request reads: one snapshot for the whole request, even if a switch happens meanwhile."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from practitioner._index import PractitionerIndex


def current_index(request: Request) -> PractitionerIndex:
    holder = request.app.state.context.index
    index = holder.current
    if holder.sync is not None:  # referrals linked since (by the linker process): searchable at once
        holder.sync(index)
    return index


Index = Annotated[PractitionerIndex, Depends(current_index)]
