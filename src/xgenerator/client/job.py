"""`Job`: a handle on one job, to follow it live, wait for it, cancel it, fetch its files."""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from httpx_sse import connect_sse

from xgenerator.client import errors, sse
from xgenerator.client.progress import JobProgress
from xgenerator.client.sse import StreamMessage
from xgenerator.client.types import JobEvent, JobInfo, JobResult, Model

if TYPE_CHECKING:
    from xgenerator.client.core import Client

# The server sends a keep-alive every 15 s; a stream silent for longer is dead.
STREAM_READ_TIMEOUT_S = 45.0
MAX_RECONNECTS = 5
# When the stream cannot be followed, `wait` asks for the job's state this often.
POLL_INTERVAL_S = 1.0


class Job:
    """A handle on a job: its last known state in `info`, and ways to follow it."""

    def __init__(self, client: Client, info: JobInfo) -> None:
        self.client = client
        self.info = info
        self.polled = False  # set by `wait` when it had to poll instead of streaming

    def __repr__(self) -> str:
        return f"Job({self.id!r}, status={self.status!r})"

    @property
    def id(self) -> str:
        return self.info.job_id

    @property
    def status(self) -> str:
        return self.info.status

    def refresh(self) -> JobInfo:
        self.info = JobInfo.model_validate(self.client.request("GET", f"/jobs/{self.id}"))
        return self.info

    def cancel(self) -> JobInfo:
        """Ask the job to stop: a queued job is cancelled at once, a running one within a
        round (`wait()` then raises JobCancelled)."""
        self.client.request("POST", f"/jobs/{self.id}/cancel")
        return self.refresh()

    def events(self) -> builtins.list[JobEvent]:
        body = self.client.request("GET", f"/jobs/{self.id}/events")
        return [JobEvent.model_validate(e) for e in body["events"]]

    def history(self, max_points: int | None = None) -> builtins.list[dict[str, Any]]:
        params = {"max_points": max_points} if max_points else None
        points: builtins.list[dict[str, Any]] = self.client.request(
            "GET", f"/jobs/{self.id}/history", params=params
        )["points"]
        return points

    def stream(self, timeout: float | None = None, after_round: int = 0) -> Iterator[StreamMessage]:
        """The job's live messages up to its final status, reconnecting (with the last id,
        so nothing is missed or repeated) when the connection drops or the server closes it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        # "0-R": every event, but only the rounds after R (the stream's id format)
        last_id: str | None = f"0-{after_round}" if after_round > 0 else None
        failures = 0
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise errors.WaitTimeout(f"job {self.id} still {self.status} after {timeout}s")
            headers = {"Last-Event-ID": last_id} if last_id else {}
            read = (
                STREAM_READ_TIMEOUT_S
                if remaining is None
                else min(STREAM_READ_TIMEOUT_S, remaining)
            )
            try:
                with connect_sse(
                    self.client.http,
                    "GET",
                    f"/jobs/{self.id}/stream",
                    headers=headers,
                    timeout=httpx.Timeout(10.0, read=read),
                ) as source:
                    _check_stream(source.response, self.id)
                    for event in source.iter_sse():
                        # A running job's stream never goes quiet long enough for the read
                        # timeout to fire, so the deadline is checked at each event (the
                        # keep-alives included, which arrive as events without data).
                        if deadline is not None and time.monotonic() >= deadline:
                            raise errors.WaitTimeout(
                                f"job {self.id} still {self.status} at its deadline"
                            )
                        message = sse.message(event)
                        if message is None:
                            continue
                        failures = 0
                        last_id = message.id or last_id
                        if message.event == "status":
                            self.info = self.info.model_copy(
                                update={"status": message.data["status"]}
                            )
                        yield message
                        if message.is_final_status:
                            return
            except httpx.TransportError as exc:
                if deadline is not None and time.monotonic() >= deadline:
                    continue  # the loop's check raises WaitTimeout
                failures += 1
                # Never connected at all: a second refusal is not a dropped connection.
                never_connected = last_id is None and failures > 1
                if failures > MAX_RECONNECTS or never_connected:
                    raise errors.StreamUnavailable(f"stream of job {self.id}: {exc}") from exc
                time.sleep(min(0.5 * failures, 3.0))

    def wait(
        self,
        timeout: float | None = None,
        progress: bool = True,
        poll_interval: float = POLL_INTERVAL_S,
    ) -> JobInfo:
        """Block until the job ends; its final state if it succeeded.

        Follows the event stream; when the stream cannot be followed (refused, or a proxy
        that answers something else) it polls `GET /jobs/{id}` every `poll_interval` seconds
        instead, and `self.polled` says so. Raises JobFailed or JobCancelled (with the final
        state in `.job`), and WaitTimeout after `timeout` seconds (the job itself goes on)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        title = self.info.model_name or self.info.job_type
        display = JobProgress(title) if progress else None
        # Start where the job is: its rounds so far need not be replayed to draw a bar.
        done = self.info.progress
        with display if display is not None else nullcontext():
            if display is not None:
                display.progress(done.model_dump())
            try:
                for message in self.stream(timeout, after_round=done.round or 0):
                    if display is not None:
                        display.update(message)
            except errors.StreamUnavailable:
                self.polled = True
                self._poll(deadline, poll_interval, display)
        return self._succeeded(self.refresh())

    def _succeeded(self, info: JobInfo) -> JobInfo:
        """A final state, if it is a success; else JobFailed or JobCancelled."""
        if info.status == "failed":
            error = info.error
            why = f"{error.error_type}: {error.message}" if error else "no error recorded"
            raise errors.JobFailed(f"job {self.id} failed: {why}", info)
        if info.status == "cancelled":
            raise errors.JobCancelled(f"job {self.id} was cancelled", info)
        return info

    def trials(self) -> dict[str, Any]:
        """A search's leaderboard (`Client.trials`)."""
        return self.client.trials(self.id)

    def follow_trials(
        self, timeout: float | None = None, interval: float = POLL_INTERVAL_S
    ) -> Iterator[dict[str, Any]]:
        """A search's leaderboard every `interval` seconds until the search ends, the last
        one read after it ended; then, as `wait`, JobFailed or JobCancelled (the search's
        final state in `.job`), and WaitTimeout after `timeout` seconds (the search goes on)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            info = self.refresh()
            yield self.trials()  # read after the status: a final status gets a final board
            if info.is_final:
                break
            if deadline is not None and time.monotonic() + interval > deadline:
                raise errors.WaitTimeout(f"search {self.id} still {info.status} after {timeout:g}s")
            time.sleep(interval)
        self._succeeded(info)

    def _poll(self, deadline: float | None, interval: float, display: JobProgress | None) -> None:
        while not self.refresh().is_final:
            if display is not None:
                display.progress(self.info.progress.model_dump())
            if deadline is not None and time.monotonic() + interval > deadline:
                raise errors.WaitTimeout(f"job {self.id} still {self.status} after polling")
            time.sleep(interval)

    def result(self) -> JobResult:
        """A finished job's result and the files it produced (409 while it runs)."""
        return JobResult.model_validate(self.client.request("GET", f"/jobs/{self.id}/result"))

    def download(self, name: str, target: str | Path) -> Path:
        """Save one of the job's files (see `result().artifacts`)."""
        return self.client.download(f"/jobs/{self.id}/artifacts/{name}", target)

    def model(self) -> Model:
        if not self.info.model_id:
            raise errors.ClientError(f"job {self.id} has no model (status {self.status})")
        return self.client.models.get(self.info.model_id)


def _check_stream(response: httpx.Response, job_id: str) -> None:
    """An API error (the job is not found, the key is wrong) is raised as such; anything else
    that is not an event stream (a proxy's error page, a 5xx) means: poll instead."""
    content_type = response.headers.get("content-type", "")
    if response.status_code < 400 and content_type.startswith("text/event-stream"):
        return
    response.read()
    if 400 <= response.status_code < 500 and content_type.startswith("application/json"):
        raise errors.from_response(response)
    raise errors.StreamUnavailable(
        f"stream of job {job_id}: HTTP {response.status_code} {content_type or 'no content type'}"
    )
