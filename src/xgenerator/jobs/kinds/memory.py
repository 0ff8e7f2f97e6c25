"""Whether a training's in-memory frame fits the memory a worker allows.

Checked at submission (a 422) and again when a worker starts the job (its own setting
decides), before any data is loaded: a job too large fails with `TooLargeForMemory`, naming
the option that trains from batches instead, rather than being killed mid-job.
"""

from __future__ import annotations

from xgenerator.errors import TooLargeForMemory
from xgenerator.settings import Settings

MIB = 1024 * 1024
# every value is held as (at least) 8 bytes: a float64 in the frame, a float32 + its
# quantile index in the DMatrix, and copies for the split
BYTES_PER_VALUE = 8


def estimate_bytes(settings: Settings, rows: int, columns: int) -> int:
    """Peak memory a training of rows x columns needs, by the measured factor."""
    return int(rows * columns * BYTES_PER_VALUE * settings.memory_estimate_factor)


def check_fits(settings: Settings, rows: int, columns: int, external_memory: bool) -> None:
    """Raise TooLargeForMemory when an in-memory training would exceed the worker's memory."""
    limit = settings.worker_memory_mb
    if limit is None or external_memory:
        return
    needed = estimate_bytes(settings, rows, columns)
    if needed > limit * MIB:
        raise TooLargeForMemory(
            f"training {rows:,} rows x {columns} columns in memory needs about "
            f"{needed / MIB:,.0f} MiB; a worker allows {limit:,.0f} MiB (XGEN_WORKER_MEMORY_MB). "
            'Send "external_memory": true to train from batches, or use fewer features.',
            {
                "estimated_mb": round(needed / MIB, 1),
                "worker_memory_mb": limit,
                "rows": rows,
                "columns": columns,
                "option": "external_memory",
            },
        )
