"""The practitioner index service: "who else is involved?" over the published golden snapshot.

Public surface for the CLI and tests: `create_app`, `build_context`, `serve`, and the user and role
administration functions. Domains live in sub-packages (auth, search, person, audit, referrals, ig), each
with router.py (thin routes), schemas.py, service.py (logic without HTTP) and dependencies.py.
"""

from practitioner._app import build_context, create_app
from practitioner.auth.service import add_user, get_role, list_roles, list_users, set_role, update_user

__all__ = ["add_user", "build_context", "create_app", "get_role", "list_roles", "list_users", "serve", "set_role",
           "update_user"]


def serve(settings, *, host: str | None = None, port: int | None = None, workers: int | None = None,
          linkers: int | None = None) -> None:
    """Run the service: `practitioner_linkers` linker processes and `practitioner_workers` web workers on one
    listening socket.

    The workers share each snapshot's read-only index file and the store; the linker processes link referrals
    (the first also switches snapshots: practitioner/_linker.py). No access log: it would carry URLs; the app logs route
    templates.
    """
    from practitioner._workers import run

    run(settings, host=host or settings.practitioner_host, port=port or settings.practitioner_port,
        workers=workers or settings.practitioner_workers, linkers=linkers or settings.practitioner_linkers)
