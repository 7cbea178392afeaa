"""OpenID Connect sign-in (authorisation code flow), on when `practitioner_oidc_issuer` is set.

The identity provider proves who the user is; this service still decides what they may see: the OIDC
subject must belong to a user an administrator registered (`familylink users add --oidc-subject`), whose
role is held here. The ID token is not trusted on its own: the userinfo endpoint is asked with the access
token over TLS, and the state parameter ties the callback to the browser that started it.
"""

from __future__ import annotations

import secrets
import urllib.parse
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str | None


class OidcError(Exception):
    pass


def discover(config: OidcConfig) -> dict:
    url = config.issuer.rstrip("/") + "/.well-known/openid-configuration"
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    return response.json()


def authorisation_url(config: OidcConfig, redirect_uri: str) -> tuple[str, str]:
    """Where to send the browser, and the state to remember in a cookie."""
    state = secrets.token_urlsafe(24)
    query = urllib.parse.urlencode({"response_type": "code", "client_id": config.client_id, "scope": "openid",
                                    "redirect_uri": redirect_uri, "state": state})
    return f"{discover(config)['authorization_endpoint']}?{query}", state


def subject_for_code(config: OidcConfig, code: str, redirect_uri: str) -> str:
    endpoints = discover(config)
    token = httpx.post(endpoints["token_endpoint"], timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
        "client_id": config.client_id, "client_secret": config.client_secret or ""})
    if token.status_code != 200:
        raise OidcError("the identity provider refused the sign-in code")
    access = token.json().get("access_token")
    info = httpx.get(endpoints["userinfo_endpoint"], timeout=10, headers={"Authorization": f"Bearer {access}"})
    if info.status_code != 200 or not info.json().get("sub"):
        raise OidcError("the identity provider did not confirm who signed in")
    return str(info.json()["sub"])
