"""Cross-cutting rules as dependencies: who is signed in (with role), the stated purpose, CSRF.

Every page route depends on `CurrentUser` or `PurposeStated`, so none can forget them; form posts also
depend on `CsrfChecked`. Dependencies that only look at what is already known are `async def`: FastAPI runs a
plain `def` dependency on a thread-pool thread, a hand-off each (those that read the store stay `def`).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Form, HTTPException, Request

from practitioner.auth.service import Principal, resolve_session

SESSION_COOKIE = "fl_session"
LOGIN_CSRF_COOKIE = "fl_login_csrf"


class RedirectTo(Exception):
    """Raised by a dependency to send the browser elsewhere (handled in the app)."""

    def __init__(self, location: str):
        self.location = location


def context(request: Request):
    return request.app.state.context


def current_user(request: Request) -> Principal:
    ctx = context(request)
    principal = resolve_session(ctx.engine, request.cookies.get(SESSION_COOKIE, ""), idle_minutes=ctx.rules.idle_minutes)
    if principal is None:
        raise RedirectTo("/login")
    request.state.principal = principal
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]


async def purpose_stated(principal: CurrentUser) -> Principal:
    """No search or view until the session has a stated purpose of access."""
    if not principal.purpose:
        raise RedirectTo("/purpose")
    return principal


PurposeStated = Annotated[Principal, Depends(purpose_stated)]


async def csrf_checked(principal: CurrentUser, csrf_token: Annotated[str, Form()] = "") -> Principal:
    if not hmac.compare_digest(csrf_token.encode(), principal.csrf_token.encode()):
        raise HTTPException(status_code=403, detail="The form expired or did not come from this service. Reload and try again.")
    return principal


CsrfChecked = Annotated[Principal, Depends(csrf_checked)]


async def require_ig_officer(principal: CurrentUser) -> Principal:
    if not principal.role.ig_officer:
        raise HTTPException(status_code=403, detail="The IG pages are for information governance officers.")
    return principal


IgOfficer = Annotated[Principal, Depends(require_ig_officer)]
