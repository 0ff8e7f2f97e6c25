"""Rich progress bars: a training job (round, percent, latest metric, ETA) and an upload.

They draw on stderr, so that a script's stdout stays clean.
"""

from __future__ import annotations

from types import TracebackType
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from xgenerator.client.sse import StreamMessage


def latest_metric(metrics: dict[str, Any]) -> str:
    """The metric to show: the first validation metric, else the first one."""
    names = [k for k in metrics if k.startswith("validation")] or list(metrics)
    if not names:
        return ""
    value = metrics[names[0]]
    return f"{names[0]} {value:.4f}" if isinstance(value, int | float) else f"{names[0]} {value}"


class JobProgress:
    """Follows the messages of a job's stream on a progress bar."""

    def __init__(self, title: str, console: Console | None = None) -> None:
        self.title = title
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rounds]}"),
            TextColumn("[cyan]{task.fields[metric]}"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
        )
        self.task: TaskID | None = None
        self.status = "queued"

    def __enter__(self) -> JobProgress:
        self.bar.start()
        self.task = self.bar.add_task(self._describe(), total=100, rounds="", metric="")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.bar.stop()

    def _describe(self) -> str:
        return f"{self.title} [{self.status}]"

    def update(self, message: StreamMessage) -> None:
        assert self.task is not None  # noqa: S101 - used inside `with`
        data = message.data
        if message.event == "status":
            self.status = data["status"]
            self.bar.update(self.task, description=self._describe())
            if self.status == "succeeded":
                self.bar.update(self.task, completed=self.bar.tasks[0].total)
        elif message.event == "progress":
            self.progress(data)

    def progress(self, data: dict[str, Any]) -> None:
        """Show a progress snapshot: {round, total_rounds, percent, metrics, message}."""
        assert self.task is not None  # noqa: S101 - used inside `with`
        total, number = data.get("total_rounds"), data.get("round")
        if total and number:
            self.bar.update(
                self.task,
                total=total,
                completed=number,
                rounds=f"round {number}/{total}",
                metric=latest_metric(data.get("metrics") or {}),
            )
        elif data.get("percent") is not None and not self.bar.tasks[0].fields["rounds"]:
            self.bar.update(self.task, completed=data["percent"], metric=data.get("message") or "")


class UploadProgress:
    """Wraps a binary file: every read the HTTP client makes advances the bar."""

    def __init__(
        self, file: IO[bytes], size: int, name: str, console: Console | None = None
    ) -> None:
        self.file = file
        self.bar = Progress(
            TextColumn("[bold]upload {task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
        )
        self.task = self.bar.add_task(name, total=size)

    def fileno(self) -> int:
        """So that the HTTP client can size the body (and send a Content-Length)."""
        return self.file.fileno()

    def read(self, size: int = -1) -> bytes:
        chunk = self.file.read(size)
        self.bar.advance(self.task, len(chunk))
        return chunk

    def __enter__(self) -> UploadProgress:
        self.bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.bar.stop()
