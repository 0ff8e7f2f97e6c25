"""All configuration in one place: read once at an entry point, then passed down.

Embedded mode needs no variable at all: everything lives under ``XGEN_DATA_DIR``.
Distributed mode sets ``XGEN_DATABASE_URL``, ``XGEN_BROKER_URL`` and ``XGEN_STORAGE_URL``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from xgenerator.errors import ConfigurationError

# `secrets.token_urlsafe(24)` gives 32 characters; 24 is the least an admin key may have.
MIN_ADMIN_KEY = 24


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="XGEN_", extra="ignore", frozen=True)

    data_dir: Path = Path("./data")
    database_url: str | None = None
    broker_url: str | None = None
    storage_url: str | None = None

    # S3-compatible storage (MinIO, moto, AWS); only read when storage_url starts with s3://
    s3_endpoint_url: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_region: str | None = None

    max_upload_mb: float = Field(default=200.0, gt=0)
    max_dataset_rows: int = Field(default=10_000_000, gt=0)
    max_dataset_columns: int = Field(default=2_000, gt=0)
    max_predict_rows: int = Field(default=10_000, gt=0)
    # Rows x classes one prediction answer may hold: a 40 KB request to a 1,000-class model
    # answered 287 MB. Past it: 413, use a batch prediction job.
    max_predict_values: int = Field(default=1_000_000, gt=0)
    # Rows per /predict with "explain": TreeSHAP costs ~100x a prediction per row (2.7 ms a
    # row for 100 depth-6 trees, bench/explain.py): 1,000 rows hold an API thread ~3 s.
    max_explain_rows: int = Field(default=1_000, gt=0)
    max_body_mb: float = Field(default=16.0, gt=0)
    # Rows per chunk for jobs that stream a dataset (batch prediction, normalize, anomalies,
    # report scoring): bounds their memory, and sets how often they report progress.
    job_chunk_rows: int = Field(default=50_000, gt=0)
    # Datasets by reference (POST /datasets/register): locations (s3://bucket/prefix/ or local
    # directories, comma-separated) a user may register without uploading. Empty: the route
    # is off. Each must name a folder: a URI is allowed when it is the prefix or lies below it.
    register_allowed_prefixes: str = ""
    # Memory one training may take in a worker, in MiB: a job whose frame would need more
    # (rows x columns x 8 bytes x `memory_estimate_factor`) is refused before it loads
    # anything, naming `external_memory` as the way out. None: no check.
    worker_memory_mb: float | None = Field(default=None, gt=0)
    # pandas frame + its float32 copy + DMatrix quantiles + split copies, measured ~3x.
    memory_estimate_factor: float = Field(default=3.0, gt=0)
    # One model across many machines (`xgboost.dask`): the Dask scheduler's address
    # (tcp://host:8786). A /train request with "distributed": true trains there (a 422
    # without it); the Celery job keeps the job's state, progress, cancel and result.
    # The Dask workers run this package's image and reach the artifact store themselves.
    dask_scheduler: str | None = None
    # With a scheduler: a training on a dataset of at least this many rows goes to Dask
    # unless the request says "distributed": false. None: only when asked.
    dask_min_rows: int | None = Field(default=None, gt=0)
    # How long a job waits to connect to the scheduler before it is retried later.
    dask_connect_timeout_s: float = Field(default=30.0, gt=0)
    # How long a stopped job waits for the Dask workers to stop training (they stop at the
    # end of their round); its process gets this much more than `job_stop_grace_s` before
    # SIGKILL, since killing it first would leave xgboost.dask's worker locks held.
    dask_stop_wait_s: float = Field(default=60.0, gt=0)

    # Training limits: checked in the training callback because Celery's signal-based limits
    # cannot interrupt XGBoost's C code; Celery's hard limit stays as a backstop only.
    soft_time_limit_s: float = Field(default=55 * 60, gt=0)
    hard_time_limit_s: float = Field(default=60 * 60, gt=0)
    max_num_boost_round: int = Field(default=5_000, gt=0)
    max_depth_limit: int = Field(default=16, gt=0)
    # What one training may cost (ml/cost.py): leaves grown in all, and histogram memory.
    max_training_leaves: int = Field(default=100_000_000, gt=0)
    max_training_histogram_mb: int = Field(default=2_048, gt=0)
    # A text column with more distinct values is left out of a training (reason
    # "too_many_levels") unless the request names it in `features`: each level costs split
    # search time and a level seen a handful of times teaches the model nothing.
    max_category_levels: int = Field(default=10_000, gt=0)

    # Reliability
    max_attempts: int = Field(default=3, ge=1)
    lease_s: float = Field(default=60.0, gt=0)
    # SIGTERM: running jobs get this long to finish, then go back to the queue
    shutdown_grace_s: float = Field(default=30.0, ge=0)
    # Redis redelivers unacked messages after this; default: longer than the hard time limit
    visibility_timeout_s: float | None = Field(default=None, gt=0)
    reconcile_interval_s: float = Field(default=10.0, gt=0)
    requeue_after_s: float = Field(default=60.0, ge=0)
    checkpoint_every: int = Field(default=25, ge=0)
    # ... and at most one checkpoint per this many seconds of training, none when the rounds
    # left should take less: a crash then costs at most max(checkpoint_every rounds, this) of
    # work, twice this near the end, and a short job writes none (each is a whole model: on a
    # 10 s job of 200 rounds, 7 of them took 8 % of its time)
    checkpoint_min_interval_s: float = Field(default=5.0, ge=0)
    # Each job runs in a child process of the worker's pool process (jobs/isolation.py), so a
    # cancel, the time limit or a lost lease stops it at once, even inside one boosting round
    # of XGBoost's C code, and its memory goes back to the OS when it ends. False: jobs run in
    # the pool process and stop at their next check (the end of the round).
    isolate_jobs: bool = True
    # The SHAP summary a training keeps (GET /models/{id}/importance?type=shap) is computed
    # after the job's success is recorded, still in the job's process: TreeSHAP on its sample
    # can cost more than a short training itself (0.7 s on a 0.5 s job of 200 rounds), and
    # the model serves without it. False: before the success, as part of the job.
    shap_summary_after_success: bool = True
    # A job's process that must stop gets SIGTERM, then SIGKILL this much later.
    job_stop_grace_s: float = Field(default=2.0, ge=0)
    progress_interval_s: float = Field(default=0.5, ge=0)
    # Live job streams poll the database (so any API process serves any stream); a stream
    # closes after stream_max_s and the client resumes it with Last-Event-ID.
    stream_poll_s: float = Field(default=0.25, gt=0)
    stream_max_s: float = Field(default=300.0, gt=0)

    # Loaded models kept in memory per process (API and workers), least recently used first
    # out; measured by their model files' sizes. A model larger than this is never kept.
    model_cache_mb: int = Field(default=1024, ge=0)

    # Jobs one worker runs at once: `xgenerator worker` without --concurrency, and embedded mode
    worker_concurrency: int = Field(default=2, ge=1)
    # Cores one worker's trainings share (jobs/threads.py); default: the CPUs it may run on
    worker_threads: int | None = Field(default=None, ge=1)
    # Embedded mode
    redis_server: str | None = None

    # Retention (jobs/kinds/cleanup.py): finished jobs, their events and result artifacts are
    # deleted this long after they finished; models stay until their owner deletes them.
    # Datasets no job or model refers to are expired only when `retention_unused_dataset_days`
    # is set.
    retention_succeeded_days: float = Field(default=90, gt=0)
    retention_failed_days: float = Field(default=30, gt=0)
    retention_cancelled_days: float = Field(default=30, gt=0)
    retention_unused_dataset_days: float | None = Field(default=None, gt=0)
    # Logged online predictions (and their feedback) are kept this long, then deleted.
    retention_prediction_log_days: float = Field(default=90, gt=0)
    cleanup_interval_s: float = Field(default=3600, gt=0)
    cleanup_batch_size: int = Field(default=500, ge=1)

    # Operations: worker heartbeats feed /status; /status and /metrics need one of the admin
    # keys (comma-separated, sent as X-Admin-Key or a Bearer token) unless status_open is set.
    worker_heartbeat_interval_s: float = Field(default=10, gt=0)
    worker_heartbeat_timeout_s: float = Field(default=30, gt=0)
    # A `device: cuda` job queued this long while no GPU worker is alive fails (NoGpuWorker).
    gpu_wait_s: float = Field(default=600, gt=0)
    admin_keys: str = ""
    # Addresses (comma-separated IPs or networks) of reverse proxies whose X-Forwarded-For is
    # believed; empty: the TCP peer is the client, whatever the headers say.
    trusted_proxies: str = ""
    status_open: bool = False
    # Browser origins allowed to call the API cross-origin (comma-separated or a JSON list,
    # e.g. https://app.example.com). Empty: no CORS at all; the dashboard is same-origin.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Rate limits per user and window (api/rate_limit.py), counted in the broker's Redis;
    # quotas on what one user may have in flight (0 = no quota).
    rate_limit_enabled: bool = True
    rate_limit_window_s: int = Field(default=60, ge=1)  # whole seconds (`limits`' windows)
    rate_limit_train: int = Field(default=3, ge=1)
    rate_limit_upload: int = Field(default=10, ge=1)
    rate_limit_predict: int = Field(default=600, ge=1)
    rate_limit_submit: int = Field(default=30, ge=1)
    rate_limit_write: int = Field(default=60, ge=1)
    rate_limit_read: int = Field(default=120, ge=1)
    rate_limit_delete: int = Field(default=30, ge=1)
    # per client address: sign-up has no user to count by; failed admin keys are counted
    # before any key is compared
    rate_limit_signup: int = Field(default=10, ge=1)
    rate_limit_admin_failures: int = Field(default=10, ge=1)
    max_active_jobs_per_user: int = Field(default=20, ge=0)
    # Live API keys per user (POST /users/me/keys answers 409 past it; revoke one first).
    max_keys_per_user: int = Field(default=20, ge=1)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # Accept the URLs people paste from their hosting provider.
        for old in ("postgres://", "postgresql://"):
            if value.startswith(old):
                return "postgresql+psycopg://" + value[len(old) :]
        if not value.startswith(("postgresql+psycopg://", "sqlite://", "sqlite+pysqlite://")):
            raise ValueError("must be a postgresql+psycopg:// or sqlite:// URL")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _cors_origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(value, list):
            value = [str(v).strip().rstrip("/") for v in value if str(v).strip()]
            for origin in value:
                if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
                    raise ValueError(f"{origin!r} is not an origin like https://host[:port]")
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "redis+socket://")):
            raise ValueError("must be a redis://, rediss:// or redis+socket:// URL")
        return value

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("file://", "s3://", "memory://")):
            raise ValueError("must be a file://, s3:// or memory:// URL")
        return value

    @field_validator("admin_keys")
    @classmethod
    def _admin_keys(cls, value: str) -> str:
        # An admin key opens every user's job counts and the whole fleet's state: one short
        # enough to guess is refused before the service starts.
        short = [
            key for key in value.split(",") if key.strip() and len(key.strip()) < MIN_ADMIN_KEY
        ]
        if short:
            raise ValueError(f"each admin key needs at least {MIN_ADMIN_KEY} characters")
        return value

    @property
    def embedded(self) -> bool:
        """Embedded mode: no broker configured, so `serve` starts a private one."""
        return self.broker_url is None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'xgenerator.db').resolve()}"

    @property
    def resolved_storage_url(self) -> str:
        if self.storage_url:
            return self.storage_url
        return (self.data_dir / "artifacts").resolve().as_uri()

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @property
    def register_prefix_list(self) -> list[str]:
        return [p.strip() for p in self.register_allowed_prefixes.split(",") if p.strip()]

    @property
    def admin_key_list(self) -> list[str]:
        return [key.strip() for key in self.admin_keys.split(",") if key.strip()]


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; a bad value fails here, naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"XGEN_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from None
