"""Reading Server-Sent Events: a line parser, and a follower that reconnects with the last id.

Only what the job stream uses: `id`, `event`, `data` (joined across lines) and comments.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StreamMessage:
    """One message of `GET /jobs/{id}/stream`: `event` is status, progress or event."""

    event: str
    id: str | None
    data: dict[str, Any]

    @property
    def is_final_status(self) -> bool:
        return self.event == "status" and self.data.get("status") in FINAL_STATUSES


FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


class Parser:
    """Feed lines (without their line ending); a message comes out at each blank line."""

    def __init__(self) -> None:
        self._event = ""
        self._id: str | None = None
        self._data: list[str] = []

    def feed(self, line: str) -> StreamMessage | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: the server's keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        return None

    def _dispatch(self) -> StreamMessage | None:
        event, data = self._event or "message", self._data
        self._event, self._data = "", []
        if not data:
            return None
        return StreamMessage(event, self._id, json.loads("\n".join(data)))


def parse(lines: Iterable[str]) -> Iterator[StreamMessage]:
    parser = Parser()
    for line in lines:
        message = parser.feed(line.rstrip("\r\n"))
        if message is not None:
            yield message
