"""Request rate limits per API key: a fixed window per key and rule, counted in Redis.

Rules (settings, per `rate_limit_window_s`): `POST /train`, `POST /cv` and
`POST /models/{id}/retrain` share the `train` budget (3); `DELETE /jobs/{id}` has `delete`
(30); every other GET has `read` (120). Sign-up (`POST /users`) has no key yet, so its
`signup` budget (10) is per client address (behind a proxy, run uvicorn with
--proxy-headers so that this is the real client).
Operator endpoints and other requests without an API key are not limited here (they are
refused by authentication anyway).

The counters live in the broker's Redis in both modes: in Redis mode that shares them across
API processes and hosts; in embedded mode the private Redis is always there, so one code path
serves both. Only an app built without any broker counts in memory. The bucket is a hash of
the whole key, not its public prefix, so that someone who knows a victim's prefix cannot spend
the victim's budget with wrong secrets. If Redis cannot be reached the request is let through
(logged): the limiter must not turn a broker blip into an outage of reads.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import redis
from fastapi import Request, Response

from xgenerator.context import Context
from xgenerator.errors import RateLimited
from xgenerator.settings import Settings

log = logging.getLogger(__name__)

UNLIMITED_PATHS = frozenset({"/health", "/status", "/metrics"})
TRAIN_ROUTES = frozenset(
    {("POST", "/train"), ("POST", "/cv"), ("POST", "/models/{model_id}/retrain")}
)
DELETE_ROUTES = frozenset({("DELETE", "/jobs/{job_id}")})
SIGNUP_ROUTES = frozenset({("POST", "/users")})


@dataclass(frozen=True)
class Rule:
    name: str
    limit: int


def rule_for(settings: Settings, method: str, route: str) -> Rule | None:
    """Which budget a request spends, by method and route template (None: not limited)."""
    if route in UNLIMITED_PATHS:
        return None
    if (method, route) in TRAIN_ROUTES:
        return Rule("train", settings.rate_limit_train)
    if (method, route) in DELETE_ROUTES:
        return Rule("delete", settings.rate_limit_delete)
    if (method, route) in SIGNUP_ROUTES:
        return Rule("signup", settings.rate_limit_signup)
    if method in ("GET", "HEAD"):
        return Rule("read", settings.rate_limit_read)
    return None


class Window(Protocol):
    def hit(self, key: str, window_s: float) -> tuple[int, float]:
        """Count one request; returns (requests in the window so far, seconds it has left)."""


# INCR, and start the window's clock on its first request, in one atomic step.
_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
"""


class RedisWindow:
    def __init__(self, client: redis.Redis) -> None:
        self.script = client.register_script(_HIT)

    def hit(self, key: str, window_s: float) -> tuple[int, float]:
        count, ttl_ms = self.script(keys=[key], args=[int(window_s * 1000)])
        return int(count), int(ttl_ms) / 1000


class MemoryWindow:
    """For an app without a broker: one process, so a dict under a lock is the whole story."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.windows: dict[str, tuple[int, float]] = {}

    def hit(self, key: str, window_s: float) -> tuple[int, float]:
        now = time.monotonic()
        with self.lock:
            count, ends = self.windows.get(key, (0, 0.0))
            if now >= ends:
                count, ends = 0, now + window_s
                # forget finished windows now and then, so the dict stays small
                self.windows = {k: v for k, v in self.windows.items() if v[1] > now}
            self.windows[key] = (count + 1, ends)
            return count + 1, ends - now


class RateLimiter:
    """An app-wide dependency; raises `RateLimited` (429 with Retry-After) past a rule."""

    def __init__(self, settings: Settings, window: Window) -> None:
        self.settings = settings
        self.window = window

    def __call__(self, request: Request, response: Response) -> None:
        settings = self.settings
        route = getattr(request.scope.get("route"), "path", None)
        if not settings.rate_limit_enabled or route is None:
            return
        rule = rule_for(settings, request.method, route)
        if rule is None:
            return
        if rule.name == "signup":
            caller = request.client.host if request.client else "unknown"
        else:
            caller = request.headers.get("x-api-key") or ""
        if not caller:
            return
        bucket = hashlib.sha256(caller.encode()).hexdigest()[:32]
        try:
            count, left = self.window.hit(
                f"xgen:rl:{rule.name}:{bucket}", settings.rate_limit_window_s
            )
        except redis.RedisError as exc:
            log.warning("rate limit not checked, Redis unavailable: %s", exc)
            return
        response.headers["X-RateLimit-Limit"] = str(rule.limit)
        response.headers["X-RateLimit-Remaining"] = str(max(rule.limit - count, 0))
        if count > rule.limit:
            retry_after = max(1, math.ceil(left))
            raise RateLimited(
                f"rate limit exceeded: {rule.limit} {rule.name} requests per "
                f"{settings.rate_limit_window_s:g} s; retry in {retry_after} s",
                retry_after=retry_after,
                details={
                    "rule": rule.name,
                    "limit": rule.limit,
                    "window_s": settings.rate_limit_window_s,
                },
            )


def build(context: Context) -> RateLimiter:
    client = context.redis
    window: Window = RedisWindow(client) if client is not None else MemoryWindow()
    return RateLimiter(context.settings, window)
