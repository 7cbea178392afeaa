"""`familylink serve`: the process tree — L linker processes, N uvicorn web workers, this supervisor.

The supervisor binds the listening socket once and hands it to each worker (as uvicorn's own multi-worker mode
does), starts the coordinating linker first and waits until it accepts links (it builds or opens the snapshot's
files), then the other linkers and the workers, and ends every child when it is told to stop. The linkers share
one lock for committing their decisions (practitioner/_linker.py).
Workers are spawned (not forked): DuckDB and SQLAlchemy state never crosses a fork.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import secrets
import signal
import socket
import threading

log = logging.getLogger("familylink.practitioner")
multiprocessing.allow_connection_pickling()  # the listening socket goes to each worker
_SPAWN = multiprocessing.get_context("spawn")


def _web_worker(settings, sockets, linker_addresses: list[str], authkey: bytes) -> None:
    import uvicorn

    from practitioner._app import build_context, create_app
    from practitioner._linker import LinkerClient

    context = build_context(settings, follow=True, linker=LinkerClient(linker_addresses, authkey))
    app = create_app(settings, context=context)
    config = uvicorn.Config(app, access_log=False, log_level="warning", lifespan="on")
    uvicorn.Server(config).run(sockets=sockets)


def listening_socket(host: str, port: int) -> socket.socket:
    """The socket every web worker accepts on. uvicorn makes it with protocol 0, so asyncio never sets TCP_NODELAY
    on its connections (it checks for IPPROTO_TCP): each response, written as headers then body, then waited for
    the client's delayed ACK — 40 ms on every keep-alive request (measured: 44 vs 2 ms for a static file).
    Re-wrapped from its descriptor, the socket carries the kernel's protocol, and so does every connection."""
    import uvicorn

    sock = uvicorn.Config(app=None, host=host, port=port).bind_socket()
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock = socket.socket(fileno=sock.detach())
    return sock


def run(settings, *, host: str, port: int, workers: int, linkers: int = 1) -> None:
    from practitioner._linker import run_linker

    run_id = f"{os.getpid()}-{secrets.token_hex(8)}"
    addresses = [f"\0familylink-linker-{run_id}-{n}" for n in range(linkers)]  # abstract namespace: no file
    authkey = secrets.token_bytes(32)
    stop = threading.Event()

    def _stop(_signum, _frame) -> None:
        stop.set()

    # before the first child: a stop while the linker is still building the index stops it too (no orphans)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    commit_lock = _SPAWN.Lock()
    linker_processes: list = []
    children: list = []
    sock = None
    try:
        # the coordinator first (it builds or verifies the files the others open); then the other linkers and
        # the web workers all at once — a worker sends a referral to the next linker that answers, so it
        # need not wait for every linker to be ready
        for n, address in enumerate(addresses):
            ready = _SPAWN.Event()
            process = _SPAWN.Process(target=run_linker, args=(settings, address, authkey, ready),
                                     kwargs={"coordinator": n == 0, "commit_lock": commit_lock},
                                     name=f"familylink-linker-{n}")
            process.start()
            linker_processes.append(process)
            while n == 0 and not ready.wait(1):
                if stop.is_set():
                    return
                if not process.is_alive():
                    raise SystemExit("the linker process stopped at start (see its log)")
        sock = listening_socket(host, port)
        children = [_SPAWN.Process(target=_web_worker, args=(settings, [sock], addresses, authkey),
                                   name=f"familylink-web-{n}") for n in range(workers)]
        for child in children:
            child.start()
        while not stop.wait(1):
            if not all(p.is_alive() for p in linker_processes) or not any(c.is_alive() for c in children):
                log.warning("a service process stopped; stopping the others")
                break
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()  # uvicorn finishes the requests in flight
        for child in children:
            child.join(30)
            if child.is_alive():
                child.kill()
        for process in linker_processes:
            process.terminate()
        for process in linker_processes:
            process.join(10)
            if process.is_alive():
                process.kill()
        if sock is not None:
            sock.close()
