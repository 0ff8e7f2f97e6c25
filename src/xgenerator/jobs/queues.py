"""The queues a job can wait in: a domain concept (which workers may run it), not a broker detail.

Each job row records its queue; `tasks/` maps the names onto Celery queues and workers choose
what to consume with `xgenerator worker --queues`.
"""

from __future__ import annotations

from enum import StrEnum


class Queue(StrEnum):
    TRAIN = "train"
    PREDICT = "predict"
    PROCESS = "process"
    MAINTENANCE = "maintenance"
    GPU = "gpu"


QUEUES: tuple[str, ...] = tuple(q.value for q in Queue)
# What a CPU-only worker (and the embedded one) consumes by default.
CPU_QUEUES: tuple[str, ...] = tuple(q for q in QUEUES if q != Queue.GPU)
