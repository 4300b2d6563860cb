"""What every request passes before a router sees it: the body-size limit, the security
headers (with CORS, configured in :func:`install`) and the per-key rate limit."""

from __future__ import annotations

import json
import math
import time
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Request
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo.accounts import Account
from geo.errors import RateLimitedError
from geo.settings import Settings
from services.auth import AccountDep
from services.dependencies import SettingsDep

MULTIPART_OVERHEAD = 1 << 16  # form fields and part headers around an uploaded file


class _TooLargeError(Exception):
    pass


class _Counted:
    """The request's ``receive`` and the app's ``send``, counting the body read against the
    limit; past it, the app's answer is dropped (the limit answers instead)."""

    def __init__(self, receive: Receive, send: Send, limit: int) -> None:
        self._receive, self._send, self.limit = receive, send, limit
        self.read, self.over, self.started = 0, False, False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.read += len(message.get("body", b""))
            if self.read > self.limit:
                self.over = True
                raise _TooLargeError
        return message

    async def send(self, message: Message) -> None:
        if not self.over:
            self.started = True
            await self._send(message)


class BodyLimit:
    """413 for a request body over the limit: ``max_upload_bytes`` (plus the form around
    the file) for multipart uploads, ``max_request_bytes`` for any other body. A declared
    ``Content-Length`` is refused before reading; a chunked body once it passes the limit."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.upload = settings.max_upload_bytes + MULTIPART_OVERHEAD
        self.other = settings.max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        multipart = headers.get(b"content-type", b"").startswith(b"multipart/form-data")
        limit = self.upload if multipart else self.other
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(scope, send, limit)
            return
        counted = _Counted(receive, send, limit)
        try:
            await self.app(scope, counted.receive, counted.send)
        except Exception:
            if not counted.over:
                raise
        if counted.over and not counted.started:
            await _refuse(scope, send, limit)


async def _refuse(scope: Scope, send: Send, limit: int) -> None:
    body = {
        "type": "https://alpclusters.eu/problems/request-too-large",
        "title": "Request body too large",
        "status": 413,
        "detail": f"the request body is over {limit} bytes, the most this endpoint accepts",
        "code": "request-too-large",
        "instance": scope.get("path", ""),
    }
    raw = json.dumps(body).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"connection", b"close")]
    headers.append((b"content-length", str(len(raw)).encode()))
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


class SecurityHeaders:
    """Safe defaults on every answer: no MIME sniffing, a strict referrer policy, no framing
    by other sites (the bare ``?embed=1`` maps: ``frame_ancestors``), and for HTML pages a
    Content Security Policy allowing only AlpClusters' own scripts, styles, fonts and data,
    plus the basemap's tile server when one is set."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.embed = settings.frame_ancestors
        tiles = urlsplit(settings.tiles) if settings.tiles else None  # {s}.tile... : *.tile...
        self.images = f" {tiles.scheme}://{tiles.netloc.replace('{s}', '*')}" if tiles else ""
        self.hsts = settings.hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        embed = b"embed=1" in scope.get("query_string", b"")
        ancestors = self.embed if embed else "'self'"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                html = any(k == b"content-type" and v.startswith(b"text/html") for k, v in headers)
                headers += [
                    (k, v)
                    for k, v in self._headers(ancestors, html, embed)
                    if k.lower() not in names
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)

    def _headers(self, ancestors: str, html: bool, embed: bool) -> list[tuple[bytes, bytes]]:
        out = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
        ]
        if not embed:
            out.append((b"x-frame-options", b"SAMEORIGIN"))
        if self.hsts:
            out.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        policy = f"frame-ancestors {ancestors}; object-src 'none'; base-uri 'self'"
        if html:
            policy = (
                "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                "style-src 'self' 'unsafe-inline'; font-src 'self' data:; "
                f"img-src 'self' data: blob:{self.images}; connect-src 'self'; "
                f"worker-src 'self' blob:; form-action 'self'; {policy}"
            )
        out.append((b"content-security-policy", policy.encode()))
        return out


class RateLimit:
    """Requests per minute per account (per client address without a credential), in a
    sliding window kept by each service process (:mod:`limits`, in memory)."""

    def __init__(self, per_minute: int) -> None:
        self.item = RateLimitItemPerMinute(per_minute) if per_minute else None
        self.limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    def hit(self, who: str) -> None:
        if self.item is None or self.limiter.hit(self.item, who):
            return
        stats = self.limiter.get_window_stats(self.item, who)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimitedError(
            f"more than {self.item.amount} requests per minute from {who}; retry in {wait} s",
            retry_after=wait,
        )


def rate_limited(request: Request, settings: SettingsDep, who: AccountDep) -> Account | None:
    """The rate limit of the account asking (a router dependency, after authentication)."""
    limit: RateLimit = request.app.state.rate_limit
    client = request.client.host if request.client else "unknown"
    limit.hit(f"account {who.name}" if who is not None else f"address {client}")
    return who


RateDep = Depends(rate_limited)


def install(app: FastAPI, settings: Settings) -> None:
    """The guards of ``app``: CORS (when origins are set), security headers, body limit."""
    app.state.rate_limit = RateLimit(settings.rate_limit_per_minute)
    app.add_middleware(BodyLimit, settings=settings)
    app.add_middleware(SecurityHeaders, settings=settings)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "HEAD", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Accept"],
            expose_headers=["Location", "Retry-After", "Content-Disposition", "Link"],
            max_age=600,
        )
