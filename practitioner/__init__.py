"""The practitioner index service: "who else is involved?" over the published golden snapshot.

Public surface for the CLI and tests: `create_app`, `build_context`, `serve`, and the user and role
administration functions. Domains live in sub-packages (auth, search, person, audit, referrals, ig), each
with router.py (thin routes), schemas.py, service.py (logic without HTTP) and dependencies.py.
"""

from practitioner._app import build_context, create_app
from practitioner.auth.service import add_user, get_role, list_roles, list_users, set_role, update_user

__all__ = ["add_user", "build_context", "create_app", "get_role", "list_roles", "list_users", "serve", "set_role",
           "update_user"]


def serve(settings, *, host: str | None = None, port: int | None = None) -> None:
    """Run the service with uvicorn (no access log: it would carry URLs; the app logs route templates)."""
    import uvicorn

    app = create_app(settings)
    uvicorn.run(app, host=host or settings.practitioner_host, port=port or settings.practitioner_port,
                access_log=False, log_level="warning")
