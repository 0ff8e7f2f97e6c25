"""Request rate limits per user: a fixed window per user and rule, counted in Redis.

Every route but the operator's and `/health` spends a budget (settings, per
`rate_limit_window_s`): `train` (POST /train, /cv, /models/{id}/retrain), `upload` (POST
/datasets), `predict` (online predictions), `submit` (every other job: batch prediction,
processing, reports, no-ops), `delete` (DELETE routes), `write` (any other POST or PUT:
keys, feedback, aliases, cancels), `read` (GET). They count per *user*, after authentication,
so that a second key is no second allowance. Sign-up has no user yet: its `signup` budget
counts per client address, and so do failed admin keys (`admin_failures`), before any key is
compared. The client address is the TCP peer unless XGEN_TRUSTED_PROXIES names the proxy.

The counters live in the broker's Redis in both modes: in Redis mode that shares them across
API processes and hosts; in embedded mode the private Redis is always there, so one code path
serves both. Only an app built without any broker counts in memory. The counting is the
`limits` library's (its storage expires a window's key by Redis EXPIRE, so windows are whole
seconds). If Redis cannot be reached the request is let through (logged): the limiter must
not turn a broker blip into an outage.
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
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders

from xgenerator.context import Context
from xgenerator.errors import RateLimited
from xgenerator.settings import Settings

log = logging.getLogger(__name__)

UNLIMITED_PATHS = frozenset({"/health", "/status", "/metrics"})
TRAIN_ROUTES = frozenset(
    {("POST", "/train"), ("POST", "/cv"), ("POST", "/models/{model_id}/retrain")}
)
PREDICT_ROUTES = frozenset(
    {("POST", "/models/{model_id}/predict"), ("POST", "/models/{model_id}/invocations")}
)
SUBMIT_ROUTES = frozenset(
    {
        ("POST", "/models/{model_id}/predict-batch"),
        ("POST", "/models/{model_id}/report"),
        ("POST", "/datasets/{dataset_id}/process"),
        ("POST", "/jobs/noop"),
    }
)
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
    if (method, route) in SIGNUP_ROUTES:
        return Rule("signup", settings.rate_limit_signup)
    if (method, route) in TRAIN_ROUTES:
        return Rule("train", settings.rate_limit_train)
    if (method, route) in PREDICT_ROUTES:
        return Rule("predict", settings.rate_limit_predict)
    if (method, route) in SUBMIT_ROUTES:
        return Rule("submit", settings.rate_limit_submit)
    if method == "POST" and route in ("/datasets", "/datasets/register"):
        return Rule("upload", settings.rate_limit_upload)
    if method == "DELETE":
        return Rule("delete", settings.rate_limit_delete)
    if method in ("GET", "HEAD"):
        return Rule("read", settings.rate_limit_read)
    return Rule("write", settings.rate_limit_write)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class RateLimiter:
    """Raises `RateLimited` (429 with Retry-After) past a rule. As an app-wide dependency it
    counts what has no user (sign-up, per address); `charge_user` counts the rest once the
    key is known to belong to a user (api/deps.py)."""

    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage

    async def __call__(self, request: Request, response: Response) -> None:
        """Async: as an app-wide dependency a plain function took a trip through the thread
        pool on every request; only sign-up's Redis round trip needs one."""
        rule = self._rule(request)
        if rule is not None and rule.name == "signup":
            await run_in_threadpool(self._spend, response.headers, rule, client_address(request))

    @property
    def counts_in_redis(self) -> bool:
        """Whether charging a user is a round trip to Redis (else no I/O at all: the limit is
        off, or counted in this process's memory), which the event loop must not wait on."""
        return self.settings.rate_limit_enabled and not isinstance(self.storage, MemoryStorage)

    def charge_user(self, request: Request, headers: MutableHeaders, user_id: str) -> None:
        """Spend the user's budget for this request; `headers` get X-RateLimit-*."""
        rule = self._rule(request)
        if rule is not None and rule.name != "signup":
            self._spend(headers, rule, user_id)

    def check_failures(self, request: Request, name: str, limit: int) -> None:
        """Refuse a client address that already failed `limit` times in this window (429),
        before anything is compared: guessing is slowed to `limit` tries a window."""
        if not self.settings.rate_limit_enabled:
            return
        rule = Rule(name, limit)
        key = self._window(rule).key_for(_bucket(client_address(request)))
        try:
            count = self.storage.get(key)
            left = self.storage.get_expiry(key) - time.time()
        except StorageError as exc:
            log.warning("failures not checked, Redis unavailable: %s", exc.storage_error)
            return
        if count >= limit:
            self._refuse(rule, left)

    def record_failure(self, request: Request, name: str, limit: int) -> None:
        if not self.settings.rate_limit_enabled:
            return
        window = self._window(Rule(name, limit))
        try:
            self.storage.incr(window.key_for(_bucket(client_address(request))), window.get_expiry())
        except StorageError as exc:
            log.warning("failure not counted, Redis unavailable: %s", exc.storage_error)

    def _rule(self, request: Request) -> Rule | None:
        route = getattr(request.scope.get("route"), "path", None)
        if not self.settings.rate_limit_enabled or route is None:
            return None
        return rule_for(self.settings, request.method, route)

    def _window(self, rule: Rule) -> RateLimitItemPerSecond:
        return RateLimitItemPerSecond(rule.limit, self.settings.rate_limit_window_s, rule.name)

    def _spend(self, headers: MutableHeaders, rule: Rule, caller: str) -> None:
        window = self._window(rule)
        key = window.key_for(_bucket(caller))
        try:
            # The fixed-window strategy's `hit` is this same `incr`, but it answers only
            # yes/no: the count (for X-RateLimit-Remaining) would cost two more round trips.
            count = self.storage.incr(key, window.get_expiry())
            left = self.storage.get_expiry(key) - time.time() if count > rule.limit else 0.0
        except StorageError as exc:
            log.warning("rate limit not checked, Redis unavailable: %s", exc.storage_error)
            return
        headers["X-RateLimit-Limit"] = str(rule.limit)
        headers["X-RateLimit-Remaining"] = str(max(rule.limit - count, 0))
        if count > rule.limit:
            self._refuse(rule, left)

    def _refuse(self, rule: Rule, left: float) -> None:
        window_s = self.settings.rate_limit_window_s
        retry_after = max(1, math.ceil(left))
        raise RateLimited(
            f"rate limit exceeded: {rule.limit} {rule.name} requests per {window_s:g} s; "
            f"retry in {retry_after} s",
            retry_after=retry_after,
            details={"rule": rule.name, "limit": rule.limit, "window_s": window_s},
        )


def _bucket(caller: str) -> str:
    return hashlib.sha256(caller.encode()).hexdigest()[:32]


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
