"""Sign-in (local or OIDC), purpose of access, sign-out. Thin: rules live in service.py."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from practitioner.audit.service import Actor
from practitioner.auth import oidc, service
from practitioner.auth.dependencies import LOGIN_CSRF_COOKIE, SESSION_COOKIE, CsrfChecked, CurrentUser, context

router = APIRouter()


def _page(request: Request, name: str, values: dict, status: int = 200):
    return request.app.state.templates.TemplateResponse(request, name, values, status_code=status)


def _signed_in(request: Request, user_id: int, username: str) -> RedirectResponse:
    ctx = context(request)
    token = service.start_session(ctx.engine, user_id, idle_minutes=ctx.rules.idle_minutes, max_hours=ctx.rules.max_hours)
    ctx.audit.write(Actor(username), "login")
    response = RedirectResponse("/purpose", status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=ctx.rules.secure_cookies,
                        max_age=ctx.rules.max_hours * 3600, path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, message: str | None = None):
    ctx = context(request)
    token = secrets.token_urlsafe(24)
    response = _page(request, "login.html", {"login_csrf": token, "message": message,
                                             "oidc": bool(ctx.rules.oidc_issuer)})
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=ctx.rules.secure_cookies,
                        path="/")
    return response


@router.post("/login")
def login(request: Request, username: Annotated[str, Form(max_length=120)],
          password: Annotated[str, Form(max_length=1000)], login_csrf: Annotated[str, Form()] = ""):
    ctx = context(request)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), login_csrf.encode()):
        raise HTTPException(status_code=403, detail="The sign-in form expired. Reload it and try again.")
    try:
        user_id = service.check_password(ctx.engine, username, password, lockout_attempts=ctx.rules.lockout_attempts,
                                         lockout_minutes=ctx.rules.lockout_minutes)
    except service.AuthError as exc:
        seq = ctx.audit.write(Actor(username), "login_failed")
        if isinstance(exc, service.AccountLocked):
            from practitioner.ig.service import raise_alert

            raise_alert(ctx.engine, ctx.rules, kind="lockout", username=username, audit_seq=seq,
                        reason="account locked after repeated failed sign-ins")
        return login_page(request, message=str(exc))
    return _signed_in(request, user_id, username)


@router.get("/oidc/start")
def oidc_start(request: Request):
    ctx = context(request)
    if not ctx.rules.oidc_issuer:
        raise HTTPException(status_code=404, detail="Single sign-on is not configured.")
    config = oidc.OidcConfig(ctx.rules.oidc_issuer, ctx.rules.oidc_client_id or "", ctx.rules.oidc_client_secret)
    url, state = oidc.authorisation_url(config, str(request.url_for("oidc_callback")))
    response = RedirectResponse(url, status_code=303)
    response.set_cookie("fl_oidc_state", state, httponly=True, samesite="lax", secure=ctx.rules.secure_cookies, path="/")
    return response


@router.get("/oidc/callback", name="oidc_callback")
def oidc_callback(request: Request, code: str = "", state: str = ""):
    ctx = context(request)
    expected = request.cookies.get("fl_oidc_state", "")
    if not ctx.rules.oidc_issuer or not expected or not hmac.compare_digest(expected.encode(), state.encode()):
        raise HTTPException(status_code=403, detail="Single sign-on could not be confirmed. Start again.")
    config = oidc.OidcConfig(ctx.rules.oidc_issuer, ctx.rules.oidc_client_id or "", ctx.rules.oidc_client_secret)
    try:
        subject = oidc.subject_for_code(config, code, str(request.url_for("oidc_callback")))
        user_id = service.user_for_oidc(ctx.engine, subject)
    except (oidc.OidcError, service.AuthError) as exc:
        raise HTTPException(status_code=403, detail=str(exc)) from None
    users = [u for u in service.list_users(ctx.engine) if u["id"] == user_id]
    return _signed_in(request, user_id, users[0]["username"])


@router.get("/purpose", response_class=HTMLResponse)
def purpose_page(request: Request, principal: CurrentUser):
    return _page(request, "purpose.html", {"principal": principal, "purposes": context(request).rules.purposes})


@router.post("/purpose")
def purpose(request: Request, principal: CsrfChecked, purpose: Annotated[str, Form(max_length=200)],
            detail: Annotated[str, Form(max_length=500)] = ""):
    ctx = context(request)
    if purpose not in ctx.rules.purposes:
        raise HTTPException(status_code=400, detail="Choose one of the listed purposes.")
    service.set_purpose(ctx.engine, principal.token_hash, purpose, detail.strip() or None)
    ctx.audit.write(Actor(principal.username, principal.role.name, principal.agency, purpose), "purpose",
                    detail="purpose stated for this session")
    return RedirectResponse("/search", status_code=303)


@router.post("/logout")
def logout(request: Request, principal: CsrfChecked):
    ctx = context(request)
    service.end_session(ctx.engine, principal.token_hash)
    ctx.audit.write(Actor(principal.username, principal.role.name, principal.agency, principal.purpose), "logout")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
