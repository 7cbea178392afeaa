"""The linker processes: real-time linking out of the web workers, and the one coordinator of snapshot switches.

`familylink serve` starts `practitioner_linkers` linker processes and N web workers. Each linker holds the
approved model compiled for the snapshot (`RealTimeLinker`: the blocking keys in their own read-only file, term
frequencies, Splink's scoring statement) and links the referrals sent to it one at a time; the linkers link in
parallel and commit their decisions in the store's order under one lock shared by the process tree
(`link_referral`: each takes in the others' referrals before deciding, so two referrals for the same new person
get one id). The web workers pick referrals up from the store (`sync_overlay`) and never run Splink, so a link
never stalls a search. The first linker is also the only process that builds a snapshot's index file and
reconciles referrals; the other linkers and the workers switch when it names the file.

Workers talk to them over Unix sockets in the abstract namespace (nothing on disk), authenticated with a key
made at start (multiprocessing.connection's HMAC challenge), each worker taking the linkers in turn. The worker
maps and standardises the posted row itself (the ingest code, in parallel across workers) and sends the
standardised record as Arrow IPC; the reply carries ids only.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from multiprocessing.connection import Client, Listener

from practitioner._index import SnapshotUnavailable

log = logging.getLogger("familylink.practitioner")


class LinkerUnavailable(RuntimeError):
    """The linker process did not answer (starting, or stopped)."""


def run_linker(settings, address: str, authkey: bytes, ready, *, coordinator: bool = True, commit_lock=None) -> None:
    """A linker process's main loop (a spawned process; `ready` is set once it accepts links). The coordinator
    builds and switches snapshots; the others follow the file it names in serving.json."""
    from practitioner._app import build_context
    from practitioner.referrals.service import ReferralError, frames_from_bytes, link_referral

    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the supervisor stops this one
    logging.basicConfig(level=logging.WARNING)
    ctx = build_context(settings, follow=not coordinator, links=True)
    try:
        ctx.index.refresh()  # coordinator: build the index file, the linker's keys, reconcile, then name it
    except SnapshotUnavailable:
        pass
    stop = threading.Event()
    ctx.index.watch(settings.practitioner_snapshot_poll_seconds, stop)

    def handle(conn) -> None:
        with conn:
            while True:
                try:
                    kind, payload = conn.recv()
                except (EOFError, OSError):
                    return
                if kind != "link":
                    conn.send(("failed", "unknown request"))
                    continue
                try:
                    ctx.index.current  # may load the first snapshot (outside the link lock: a switch takes both)
                    prepared = frames_from_bytes(payload["subject"], payload["involvements"])
                    with ctx.index.link_lock:
                        outcome = link_referral(ctx.engine, ctx.index.current, contracts_dir=ctx.contracts_dir,
                                                models_dir=ctx.models_dir, threshold=ctx.rules.match_threshold,
                                                source=payload["source"], received_by=payload["received_by"],
                                                prepared=prepared, commit_lock=commit_lock)
                    conn.send(("ok", dataclasses.asdict(outcome)))
                except ReferralError as exc:
                    conn.send(("refused", str(exc)))
                except SnapshotUnavailable as exc:
                    conn.send(("unavailable", str(exc)))
                except Exception as exc:  # say what failed, never with values
                    log.warning("referral link failed: %s", exc.__class__.__name__)
                    conn.send(("failed", exc.__class__.__name__))

    with Listener(address, family="AF_UNIX", authkey=authkey) as listener:
        ready.set()
        while not stop.is_set():
            try:
                conn = listener.accept()
            except (OSError, EOFError) as exc:  # a client that failed the authentication, or went away
                log.warning("linker connection refused: %s", exc.__class__.__name__)
                continue
            threading.Thread(target=handle, args=(conn,), name="linker-connection", daemon=True).start()


class LinkerClient:
    """What a web worker holds: sends one referral to the next linker process in turn, waits for the outcome
    (on a thread-pool thread); a linker that does not answer is skipped for the next one."""

    def __init__(self, addresses: list[str] | str, authkey: bytes):
        import itertools
        import random

        self.addresses = [addresses] if isinstance(addresses, str) else list(addresses)
        self.authkey = authkey
        self._turn = itertools.count(random.randrange(len(self.addresses)))  # workers do not all start on one

    def link(self, *, contracts_dir, source: str, row: dict, received_by: str):
        """Standardise here (ReferralError for a row the contract refuses), link in a linker process."""
        from practitioner.referrals.service import LinkOutcome, ReferralError, frames_to_bytes, prepare_referral

        subject, involvements = frames_to_bytes(*prepare_referral(contracts_dir, source, row))
        first = next(self._turn)
        for attempt in range(len(self.addresses)):
            address = self.addresses[(first + attempt) % len(self.addresses)]
            try:
                with Client(address, family="AF_UNIX", authkey=self.authkey) as conn:
                    conn.send(("link", {"source": source, "subject": subject, "involvements": involvements,
                                        "received_by": received_by}))
                    status, payload = conn.recv()
                break
            except (OSError, EOFError):
                continue
        else:
            raise LinkerUnavailable("no linker process is answering")
        if status == "ok":
            return LinkOutcome(**payload)
        if status == "refused":
            raise ReferralError(payload)
        if status == "unavailable":
            raise SnapshotUnavailable(payload)
        raise LinkerUnavailable(f"the linker process failed ({payload})")
