"""Security headers, rate limits and request logging without personal data."""

from __future__ import annotations

import hashlib
import logging
import threading
import time

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
    """A token bucket per key (a session, or a client address before sign-in)."""

    def __init__(self, per_minute: int):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
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


class SecurityMiddleware(BaseHTTPMiddleware):
    def __init__(self, app, *, limiter: RateLimiter, session_cookie: str, secure: bool):
        super().__init__(app)
        self.limiter = limiter
        self.session_cookie = session_cookie
        self.secure = secure

    async def dispatch(self, request: Request, call_next) -> Response:
        started = time.perf_counter()
        token = request.cookies.get(self.session_cookie)
        key = ("s:" + hashlib.sha256(token.encode()).hexdigest()[:16]) if token else \
            ("a:" + (request.client.host if request.client else "?"))
        if not request.url.path.startswith("/static") and not self.limiter.allow(key):
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
