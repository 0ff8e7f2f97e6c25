"""The messages of a job's stream, read from httpx-sse's Server-Sent Events.

httpx-sse parses the wire format; this turns its events into `StreamMessage`s (JSON data).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from httpx_sse import ServerSentEvent


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


def message(event: ServerSentEvent) -> StreamMessage | None:
    """The job message an event carries; None for one without data (the retry hint, and the
    keep-alives, which httpx-sse reports as data-less events once an id has been seen)."""
    if not event.data:
        return None
    return StreamMessage(event.event, event.id or None, json.loads(event.data))


def messages(events: Iterable[ServerSentEvent]) -> Iterator[StreamMessage]:
    for event in events:
        found = message(event)
        if found is not None:
            yield found
