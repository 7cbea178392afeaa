"""The practitioner index service: "who else is involved?" over the published golden snapshot.

Public surface for the CLI and tests: `create_app`, `build_context`, `serve`, and the user and role
administration functions. Domains live in sub-packages (auth, search, person, audit, referrals, ig), each
with router.py (thin routes), schemas.py, service.py (logic without HTTP) and dependencies.py.
"""

from practitioner._app import build_context, create_app
from practitioner.auth.service import add_user, get_role, list_roles, list_users, set_role, update_user

__all__ = ["add_user", "build_context", "create_app", "get_role", "list_roles", "list_users", "prepare", "serve",
           "set_role", "update_user"]


def prepare(settings) -> str | None:
    """Build what the service needs for the published snapshot — its index file and the approved model's blocking
    keys file — and return the snapshot id (None when nothing is published). Run after a publish (`familylink
    serve --prepare`), `familylink serve` then starts in seconds: it opens both files instead of building them.
    (A running service builds a newly published snapshot's files itself, in the background, before switching.)"""
    from practitioner._index import load_index, read_pointer
    from practitioner.referrals.service import RealTimeLinker, ReferralError, approved_model_path

    snapshot_id = read_pointer(settings.snapshots)
    if snapshot_id is None:
        return None
    index = load_index(settings.snapshots, snapshot_id, index_dir=settings.practitioner_index_dir,
                       memory_limit=settings.duckdb_memory_limit, threads=settings.duckdb_threads,
                       open_memory_limit=settings.practitioner_worker_memory_limit)
    try:
        RealTimeLinker(index, approved_model_path(settings.models), in_memory=False,
                       build_memory_limit=settings.duckdb_memory_limit)
    except ReferralError:
        pass  # no approved model yet: the index file alone
    finally:
        index.close()
    return snapshot_id


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
