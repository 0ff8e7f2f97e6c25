"""Profile `POST /models/{id}/predict` in-process: `python -m bench.profile_predict [ROWS] [N]`.

The app is driven over ASGI directly (no socket, no HTTP client), on SQLite with the rate limit
off as in the benchmarks, so that what the profile shows is the app's own work per request:
dependencies, thread-pool hops, parsing, the model, encoding. Prints the mean time per request,
then the top of a cProfile by cumulative and by own time.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from bench import REDIS_URL
from bench.prediction import records
from bench.seed_model import TARGET, numeric_frame, seed
from xgenerator.api.app import create_app
from xgenerator.context import build_context
from xgenerator.db.engine import make_engine
from xgenerator.db.migrate import upgrade
from xgenerator.settings import Settings

T = TypeVar("T")


async def call(app: Any, path: str, key: str, body: bytes) -> tuple[int, bytes]:
    """One request through the ASGI app, as uvicorn would hand it over."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-api-key", key.encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def _inline(func: Callable[..., T], *args: Any, **_: Any) -> T:
    return func(*args)


def main(argv: list[str]) -> None:
    size = int(argv[0]) if argv else 1
    repeats = int(argv[1]) if len(argv) > 1 else 2000
    directory = Path(tempfile.mkdtemp(prefix="xgen-profile-"))
    settings = Settings(
        data_dir=directory,
        database_url=f"sqlite:///{directory / 'xgenerator.db'}",
        storage_url=(directory / "artifacts").as_uri(),
        broker_url=REDIS_URL,
        rate_limit_enabled=False,
    )
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    engine.dispose()
    context = build_context(settings)
    seeded = seed(context, numeric_frame(5_000), rounds=100)
    app = create_app(settings, context)
    path = f"/models/{seeded.model_id}/predict"
    body = json.dumps({"rows": records(seeded.frame.drop(columns=[TARGET]).iloc[:size])}).encode()

    async def run(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            status, answer = await call(app, path, seeded.api_key, body)
            if status != 200:
                raise RuntimeError(f"{status}: {answer[:300]!r}")
        return time.perf_counter() - started

    asyncio.run(run(50))  # warm: model cache, connections, imports
    took = asyncio.run(run(repeats))
    print(f"{size} row(s): {took / repeats * 1e6:.0f} µs per request over {repeats}")
    # cProfile sees only this thread: the thread pool's work is run inline from here on, and
    # the difference from the figure above is what the hops cost.
    anyio.to_thread.run_sync = _inline  # type: ignore[assignment]
    took = asyncio.run(run(repeats))
    print(f"{size} row(s), thread-pool work inline: {took / repeats * 1e6:.0f} µs per request")
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(run(repeats))
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(25)
    context.close()


if __name__ == "__main__":
    main(sys.argv[1:])
