"""Security headers, rate limits and request logging without personal data."""

from __future__ import annotations

import hashlib
import logging
import threading
import time

from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

log = logging.getLogger("familylink.practitioner.http")

HEADERS = {
    # no script at all: pages are server-rendered forms and links
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class RateLimiter:
    """Requests per key (a session, or a client address before sign-in) per minute.

    With a store engine (the service), the count lives in the store (`rate_window`), so the limit holds across
    every web worker: a sliding window estimated from this minute's count and the previous minute's, weighted
    by how much of it still lies in the last 60 s. Without one, a token bucket in memory (one process only).
    """

    def __init__(self, per_minute: int, engine=None):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.engine = engine
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._calls = 0

    def allow(self, key: str) -> bool:
        if self.engine is not None:
            return self._allow_shared(key)
        stamp = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, stamp))
            tokens = min(self.capacity, tokens + (stamp - last) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, stamp)
                return False
            self._buckets[key] = (tokens - 1, stamp)
            if len(self._buckets) > 100_000:  # forget idle keys rather than grow without bound
                self._buckets = {k: v for k, v in self._buckets.items() if stamp - v[1] < 120}
            return True

    def _allow_shared(self, key: str) -> bool:
        import sqlalchemy as sa

        from practitioner._store import dialect_insert, rate_window

        stamp = time.time()
        window, elapsed = divmod(stamp, 60.0)
        window = int(window)
        upsert = dialect_insert(self.engine, rate_window).values(key=key, window=window, count=1)
        upsert = upsert.on_conflict_do_update(index_elements=["key", "window"],
                                              set_={"count": rate_window.c.count + 1}).returning(rate_window.c.count)
        with self.engine.begin() as conn:  # one atomic statement: two workers never lose a count
            current = conn.execute(upsert).scalar_one()
            previous = conn.execute(sa.select(rate_window.c.count).where(
                rate_window.c.key == key, rate_window.c.window == window - 1)).scalar() or 0
            self._calls += 1
            if self._calls % 1000 == 0:  # forget finished minutes
                conn.execute(rate_window.delete().where(rate_window.c.window < window - 1))
        return previous * (1 - elapsed / 60.0) + current <= self.capacity


class SecurityMiddleware(BaseHTTPMiddleware):
    def __init__(self, app, *, limiter: RateLimiter, session_cookie: str, secure: bool):
        super().__init__(app)
        self.limiter = limiter
        self.session_cookie = session_cookie
        self.secure = secure

    async def dispatch(self, request: Request, call_next) -> Response:
        started = time.perf_counter()
        token = request.cookies.get(self.session_cookie)
        # the store keeps rate-limit keys: a session token or a client address, hashed alike (no address is kept)
        caller = ("s:" + token) if token else ("a:" + (request.client.host if request.client else "?"))
        key = caller[:2] + hashlib.sha256(caller.encode()).hexdigest()[:16]
        allowed = request.url.path.startswith("/static") or (
            await run_in_threadpool(self.limiter.allow, key) if self.limiter.engine is not None else self.limiter.allow(key))
        if not allowed:
            response: Response = PlainTextResponse("Too many requests: wait a minute and try again.", status_code=429)
        else:
            response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if self.secure:
            response.headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
        # the route template, never the URL: no search terms or ids from query strings reach the log
        route = request.scope.get("route")
        log.info("%s %s %s %.0fms", request.method, getattr(route, "path", "?"), response.status_code,
                 1000 * (time.perf_counter() - started))
        return response
