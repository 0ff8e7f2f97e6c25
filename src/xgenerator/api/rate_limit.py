"""Request rate limits per API key: a fixed window per key and rule, counted in Redis.

Rules (settings, per `rate_limit_window_s`): `POST /train` and `POST /models/{id}/retrain`
share the `train` budget (3); `DELETE /jobs/{id}` has `delete` (30); every other GET has `read`
(120). Sign-up (`POST /users`) has no key yet, so its `signup` budget (10) is per client
address (behind a proxy, run uvicorn with --proxy-headers so that this is the real client).
Operator endpoints and other requests without an API key are not limited here (they are
refused by authentication anyway).

The counters live in the broker's Redis in both modes: in Redis mode that shares them across
API processes and hosts; in embedded mode the private Redis is always there, so one code path
serves both. Only an app built without any broker counts in memory. The bucket is a hash of
the whole key, not its public prefix, so that someone who knows a victim's prefix cannot spend
the victim's budget with wrong secrets. The counting is the `limits` library's (its storage
expires a window's key by Redis EXPIRE, so windows are whole seconds). If Redis cannot be
reached the request is let through (logged): the limiter must not turn a broker blip into an
outage of reads.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from fastapi import Request, Response
from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage

from xgenerator.context import Context
from xgenerator.errors import RateLimited
from xgenerator.settings import Settings

log = logging.getLogger(__name__)

UNLIMITED_PATHS = frozenset({"/health", "/status", "/metrics"})
TRAIN_ROUTES = frozenset({("POST", "/train"), ("POST", "/models/{model_id}/retrain")})
DELETE_ROUTES = frozenset({("DELETE", "/jobs/{job_id}")})
SIGNUP_ROUTES = frozenset({("POST", "/users")})
KEY_PREFIX = "xgen:rl"


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


class RateLimiter:
    """An app-wide dependency; raises `RateLimited` (429 with Retry-After) past a rule."""

    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage

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
        window = RateLimitItemPerSecond(rule.limit, settings.rate_limit_window_s, rule.name)
        key = window.key_for(bucket)
        try:
            # The fixed-window strategy's `hit` is this same `incr`, but it answers only
            # yes/no: the count (for X-RateLimit-Remaining) would cost two more round trips.
            count = self.storage.incr(key, window.get_expiry())
            left = self.storage.get_expiry(key) - time.time() if count > rule.limit else 0.0
        except StorageError as exc:
            log.warning("rate limit not checked, Redis unavailable: %s", exc.storage_error)
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
    return RateLimiter(context.settings, storage(context))


def storage(context: Context) -> Storage:
    """The `limits` storage: the broker's Redis (its client's pool, so its URL, unix socket
    and short timeouts), else one process's memory."""
    client = context.redis
    if client is None:
        return MemoryStorage(wrap_exceptions=True)
    return RedisStorage(
        "redis://",
        connection_pool=client.connection_pool,
        key_prefix=KEY_PREFIX,
        wrap_exceptions=True,
    )
