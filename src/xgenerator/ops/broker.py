"""Direct reads of the broker's Redis: reachability and queue depths.

Celery only publishes and consumes; `/status`, `/metrics` and the rate limiter need to look at
Redis itself. Queue keys are named the way kombu's Redis transport names them: with
`queue_order_strategy="priority"` (tasks/app.py) a queue is one list per priority step.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

import redis
from kombu.transport.redis import PRIORITY_STEPS, Channel

# Short timeouts: a status page or a rate-limit check must not hang on a dead broker.
SOCKET_TIMEOUT_S = 1.0


def redis_client(url: str, timeout: float = SOCKET_TIMEOUT_S) -> redis.Redis:
    """A redis-py client for a Celery broker URL (`redis+socket://` is `unix://` to redis-py)."""
    if url.startswith("redis+socket://"):
        url = "unix://" + url[len("redis+socket://") :]
    client: redis.Redis = redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    return client


def queue_keys(queue: str) -> list[str]:
    """The Redis lists holding `queue`'s waiting messages, one per priority step."""
    return [f"{queue}{Channel.sep}{step}" if step else queue for step in PRIORITY_STEPS]


def queue_depths(client: redis.Redis, queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting in each queue (not those a worker already reserved or holds for a
    countdown), read in one round trip."""
    names = list(queues)
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            for key in queue_keys(name):
                pipe.llen(key)
        sizes = pipe.execute()
    steps = len(PRIORITY_STEPS)
    return {name: sum(sizes[i * steps : (i + 1) * steps]) for i, name in enumerate(names)}


def ping(client: redis.Redis) -> float:
    """Round-trip time in milliseconds; raises `redis.RedisError` when unreachable."""
    started = time.perf_counter()
    client.ping()
    return (time.perf_counter() - started) * 1000


# kombu's Redis transport keeps every message a worker took but has not acknowledged in this
# hash (its default `unacked_key`): running tasks, and those held for a countdown (retries).
UNACKED_KEY = "unacked"


def task_ids_in_broker(client: redis.Redis, queues: Iterable[str]) -> set[str]:
    """Ids of the tasks waiting in `queues` or taken by a worker and not yet acknowledged:
    the messages that are not lost. One round trip; reads each queue whole, so the caller
    asks only when it has jobs to check."""
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        for key in queue_keys(queue):
            pipe.lrange(key, 0, -1)
    pipe.hvals(UNACKED_KEY)
    *waiting, unacked = pipe.execute()
    ids = {_task_id(json.loads(raw)) for messages in waiting for raw in messages}
    ids.update(_task_id(json.loads(raw)[0]) for raw in unacked)
    ids.discard("")
    return ids


def _task_id(message: dict[str, object]) -> str:
    headers = message.get("headers")
    task_id = headers.get("id") if isinstance(headers, dict) else None
    return task_id if isinstance(task_id, str) else ""
