"""The index a request reads: one snapshot for the whole request, even if a switch happens meanwhile."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from practitioner._index import PractitionerIndex


def current_index(request: Request) -> PractitionerIndex:
    return request.app.state.context.index.current


Index = Annotated[PractitionerIndex, Depends(current_index)]
