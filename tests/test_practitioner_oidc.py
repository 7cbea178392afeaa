"""Single sign-on: the authorisation-code flow against a small OpenID provider on loopback (discovery,
authorise, token, userinfo). The provider proves who signed in; the service still decides what they may see:
an unregistered subject is refused, and a forged state is refused."""

from __future__ import annotations

import threading
import time
import urllib.parse

import pytest
from fastapi import FastAPI, Form, Header, HTTPException
from fastapi.testclient import TestClient

from practitioner import add_user, build_context, create_app
from pipelines.settings import Settings
from tests._ports import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def provider():
    import uvicorn

    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    codes = {"good-code": "subject-123", "stranger-code": "subject-999"}
    idp = FastAPI()

    @idp.get("/.well-known/openid-configuration")
    def discovery():
        return {"issuer": issuer, "authorization_endpoint": f"{issuer}/authorize",
                "token_endpoint": f"{issuer}/token", "userinfo_endpoint": f"{issuer}/userinfo"}

    @idp.post("/token")
    def token(code: str = Form(), client_id: str = Form(), client_secret: str = Form(default="")):
        if client_id != "familylink" or client_secret != "s3cret" or code not in codes:
            raise HTTPException(400)
        return {"access_token": f"at-{code}", "token_type": "Bearer"}

    @idp.get("/userinfo")
    def userinfo(authorization: str = Header()):
        code = authorization.removeprefix("Bearer at-")
        if code not in codes:
            raise HTTPException(401)
        return {"sub": codes[code]}

    server = uvicorn.Server(uvicorn.Config(idp, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield issuer
    server.should_exit = True
    thread.join(10)


def test_oidc_sign_in(provider, tmp_path):
    settings = Settings(data_dir=tmp_path, practitioner_oidc_issuer=provider, practitioner_oidc_client_id="familylink",
                        practitioner_oidc_client_secret="s3cret")
    ctx = build_context(settings)
    add_user(ctx.engine, "sso-user", display_name="S", agency="Health", oidc_subject="subject-123")
    with TestClient(create_app(settings, context=ctx, watch=False), follow_redirects=False) as client:
        assert "/oidc/start" in client.get("/login").text
        start = client.get("/oidc/start")
        target = urllib.parse.urlparse(start.headers["location"])
        query = urllib.parse.parse_qs(target.query)
        assert f"{target.scheme}://{target.netloc}{target.path}" == f"{provider}/authorize"
        assert query["client_id"] == ["familylink"] and query["response_type"] == ["code"]
        state = query["state"][0]
        assert client.get("/oidc/callback", params={"code": "good-code", "state": "forged"}).status_code == 403
        refused = client.get("/oidc/callback", params={"code": "stranger-code", "state": state})
        assert refused.status_code == 403 and "not registered" in refused.text
        signed = client.get("/oidc/callback", params={"code": "good-code", "state": state})
        assert signed.status_code == 303 and signed.headers["location"] == "/purpose"
        assert client.get("/purpose").status_code == 200
