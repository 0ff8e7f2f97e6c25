"""A minimal HTTP/1.1 load generator on asyncio streams, for our own uvicorn servers only.

httpx's async client spends about a millisecond of CPU per request; on two cores shared with
the server it became the bottleneck and both sides measured the same. This client writes the
request bytes and reads status, headers and a Content-Length (or chunked) body, nothing more.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""

    @classmethod
    def json(
        cls, method: str, path: str, payload: Any, headers: dict[str, str] | None = None
    ) -> Request:
        return cls(
            method,
            path,
            {"Content-Type": "application/json", **(headers or {})},
            json.dumps(payload).encode(),
        )


@dataclass
class LoadResult:
    latencies: list[float]
    elapsed: float
    statuses: Counter[int]
    bodies: list[bytes]

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed


class Connection:
    """One keep-alive connection; requests on it go one at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, request: Request) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        lines = [
            f"{request.method} {request.path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Content-Length: {len(request.body)}",
        ]
        lines += [f"{name}: {value}" for name, value in request.headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + request.body)
        status = int((await self.reader.readline()).split(b" ", 2)[1])
        length, chunked = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if not chunked:
            return status, await self.reader.readexactly(length)
        body = b""
        while size := int((await self.reader.readline()).strip().split(b";")[0], 16):
            body += await self.reader.readexactly(size)
            await self.reader.readline()
        await self.reader.readline()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def load(
    base_url: str,
    request: Callable[[int], Request],
    clients: int,
    *,
    seconds: float | None = None,
    total: int | None = None,
    keep: bool = False,
) -> LoadResult:
    """`clients` connections, each sending `request(i)` back to back, for `seconds` or until
    `total` requests were sent. The same client drives the service and its baseline."""
    if (seconds is None) == (total is None):
        raise ValueError("give exactly one of seconds and total")
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    bodies: list[bytes] = []
    numbers = iter(range(total if total is not None else 1 << 62))

    async def client(stop_at: float) -> None:
        connection = Connection(host, port)
        try:
            for i in numbers:
                if time.perf_counter() >= stop_at:
                    return
                sent = time.perf_counter()
                status, body = await connection.send(request(i))
                latencies.append(time.perf_counter() - sent)
                statuses[status] += 1
                if keep:
                    bodies.append(body)
        finally:
            connection.close()

    async def main() -> float:
        started = time.perf_counter()
        stop_at = started + (seconds if seconds is not None else 1e9)
        await asyncio.gather(*(client(stop_at) for _ in range(clients)))
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    return LoadResult(latencies, elapsed, statuses, bodies)
