"""The linker process: real-time linking out of the web workers, and the one coordinator of snapshot switches.

`familylink serve` starts one linker process and N web workers. The linker holds the approved model, the
snapshot's blocking-key tables and term frequencies (`RealTimeLinker`), links one referral at a time (so its
overlay sees every earlier link, in order) and writes each to the store; the web workers pick referrals up from
the store (`sync_overlay`) and never run Splink, so a link never stalls a search. It is also the only process
that builds a snapshot's index file and reconciles referrals; workers switch when it names the file.

Workers talk to it over a Unix socket in the abstract namespace (nothing on disk), authenticated with a key
made at start (multiprocessing.connection's HMAC challenge). The worker maps and standardises the posted row
itself (the ingest code, in parallel across workers: two fifths of a link's time when the linker did it) and sends
the standardised record as Arrow IPC; the reply carries ids only.
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


def run_linker(settings, address: str, authkey: bytes, ready) -> None:
    """The linker process's main loop (a spawned process; `ready` is set once it accepts links)."""
    from practitioner._app import build_context
    from practitioner.referrals.service import ReferralError, frames_from_bytes, link_referral

    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the supervisor stops this one
    logging.basicConfig(level=logging.WARNING)
    ctx = build_context(settings)
    try:
        ctx.index.refresh()  # build the index file, the linker's keys, reconcile, then name it for the workers
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
                                                prepared=prepared)
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
    """What a web worker holds: sends one referral, waits for the outcome (on a thread-pool thread)."""

    def __init__(self, address: str, authkey: bytes):
        self.address = address
        self.authkey = authkey

    def link(self, *, contracts_dir, source: str, row: dict, received_by: str):
        """Standardise here (ReferralError for a row the contract refuses), link in the linker process."""
        from practitioner.referrals.service import LinkOutcome, ReferralError, frames_to_bytes, prepare_referral

        subject, involvements = frames_to_bytes(*prepare_referral(contracts_dir, source, row))
        try:
            with Client(self.address, family="AF_UNIX", authkey=self.authkey) as conn:
                conn.send(("link", {"source": source, "subject": subject, "involvements": involvements,
                                    "received_by": received_by}))
                status, payload = conn.recv()
        except (OSError, EOFError) as exc:
            raise LinkerUnavailable("the linker process is not answering") from exc
        if status == "ok":
            return LinkOutcome(**payload)
        if status == "refused":
            raise ReferralError(payload)
        if status == "unavailable":
            raise SnapshotUnavailable(payload)
        raise LinkerUnavailable(f"the linker process failed ({payload})")
