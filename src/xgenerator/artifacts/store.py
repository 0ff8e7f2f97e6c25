"""One small interface over fsspec: a local directory by default, S3 (MinIO, AWS) by URL.

Keys are always made here (`new_key`): a name a user chose never becomes a path. Failures of
the backing store other than a missing key surface as `ServiceUnavailable`, so the API answers
503 and a job retries later, whichever backend is behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

import fsspec
from botocore.exceptions import BotoCoreError

from xgenerator.errors import ServiceUnavailable
from xgenerator.settings import Settings

log = logging.getLogger(__name__)

# s3fs turns S3's answers into OSError subclasses, but not botocore's own failures
# (endpoint unreachable, read timeout, no credentials found).
STORAGE_ERRORS = (OSError, BotoCoreError)


class ArtifactStore:
    def __init__(
        self,
        url: str,
        storage_options: dict[str, Any] | None = None,
        s3_options: dict[str, Any] | None = None,
    ) -> None:
        parsed = urlparse(url)
        self.protocol = parsed.scheme
        self.options = storage_options or {}
        # How to reach S3 for datasets registered by reference, whatever backs the store.
        self.s3_options = s3_options if s3_options is not None else {}
        self._fs: Any = None
        self._pid = 0
        if self.protocol == "file":
            self.root = str(Path(parsed.path).resolve())
            self.fs.makedirs(self.root, exist_ok=True)
        else:
            self.root = (parsed.netloc + parsed.path).rstrip("/")

    @property
    def fs(self) -> Any:
        """The fsspec filesystem of this process. A remote one holds an event loop and HTTP
        connections that a forked child must not reuse, so a child builds its own."""
        if self._fs is None or self._pid != os.getpid():
            self._fs = fsspec.filesystem(self.protocol, **self.options)
            self._pid = os.getpid()
        return self._fs

    @staticmethod
    def new_key(kind: str, suffix: str) -> str:
        """A fresh key such as ``datasets/3f2c….parquet``; never built from user input."""
        return f"{kind}/{uuid.uuid4().hex}{suffix}"

    def path(self, key: str) -> str:
        """Where `key` lives for fsspec (with `protocol` and `options`): what another
        machine that shares the store (a Dask worker) opens."""
        return self._path(key)

    def _path(self, key: str) -> str:
        parts = key.split("/")
        if "\\" in key or any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"unsafe artifact key {key!r}")
        return f"{self.root}/{key}"

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """A missing key stays `FileNotFoundError`; any other storage failure (endpoint down,
        bad credentials, missing bucket, full disk) becomes `ServiceUnavailable`."""
        try:
            yield
        except FileNotFoundError:
            raise
        except STORAGE_ERRORS as exc:
            raise ServiceUnavailable(
                f"artifact store unavailable: {exc}", {"store": self.protocol}
            ) from exc

    def local_path(self, key: str) -> Path | None:
        """The file on local disk, so pyarrow can memory-map it; None for remote stores."""
        path = self._path(key)
        return Path(path) if self.protocol == "file" else None

    @contextmanager
    def open(self, key: str, mode: str = "rb") -> Iterator[IO[bytes]]:
        """A file object; for S3, reads are ranged requests and a write is uploaded on close."""
        path = self._path(key)
        with self._errors():
            if "w" in mode and self.protocol == "file":
                self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            with self.fs.open(path, mode) as handle:
                yield handle

    def put_file(self, local: Path, key: str) -> None:
        path = self._path(key)
        with self._errors():
            if self.protocol == "file":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                # copy then rename, so a reader never sees half a file
                tmp = f"{path}.{uuid.uuid4().hex}.tmp"
                shutil.copyfile(local, tmp)
                Path(tmp).replace(path)
            else:
                # S3 objects appear whole once the upload completes: no rename needed.
                self.fs.put_file(str(local), path)

    def put_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        with self._errors():
            if self.protocol == "file":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                tmp = Path(f"{path}.{uuid.uuid4().hex}.tmp")
                tmp.write_bytes(data)
                tmp.replace(path)
            else:
                self.fs.pipe_file(path, data)

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        with self._errors():
            data: bytes = self.fs.cat_file(path)
        return data

    def exists(self, key: str) -> bool:
        path = self._path(key)
        with self._errors():
            return bool(self.fs.exists(path))

    def size(self, key: str) -> int:
        path = self._path(key)
        with self._errors():
            return int(self.fs.size(path))

    def listing(self, folder: str) -> list[tuple[str, datetime]]:
        """Every file under `folder` (such as ``models``), with when it was last written:
        what the cleanup walks to find files that no row refers to."""
        root = self._path(folder)
        with self._errors():
            if not self.fs.exists(root):
                return []
            found: dict[str, dict[str, Any]] = self.fs.find(root, detail=True)
        base = self.root.rstrip("/") + "/"
        return [
            (path.split(base, 1)[1], _modified(info))
            for path, info in found.items()
            if base in path
        ]

    def delete(self, key: str) -> None:
        """Best effort: an unreachable store is logged, not raised. Every caller deletes to
        clean up (after its rows are committed or gone, or after a failure), where a leftover
        file is a harmless orphan and an error would hide what really happened. Deleting a
        missing key is fine too: cleanup must be safe to repeat."""
        path = self._path(key)
        try:
            with self._errors():
                self.fs.rm_file(path)
        except FileNotFoundError:
            pass
        except ServiceUnavailable as exc:
            log.warning("artifact %s left behind: %s", key, exc.message)


def open_store(settings: Settings) -> ArtifactStore:
    url = settings.resolved_storage_url
    s3 = s3_options(settings)
    return ArtifactStore(url, s3 if url.startswith("s3://") else {}, s3)


def s3_options(settings: Settings) -> dict[str, Any]:
    """fsspec's S3 options from the settings (the store's and referenced datasets')."""
    client_kwargs: dict[str, Any] = {}
    if settings.s3_endpoint_url:
        client_kwargs["endpoint_url"] = settings.s3_endpoint_url
    if settings.s3_region:
        client_kwargs["region_name"] = settings.s3_region
    return {
        # None falls back to botocore's own chain (AWS_* variables, instance role).
        "key": settings.s3_access_key_id,
        "secret": settings.s3_secret_access_key,
        "client_kwargs": client_kwargs,
        # One client per store and process, made by `ArtifactStore.fs`; not one shared
        # behind our back through fsspec's instance cache.
        "skip_instance_cache": True,
    }


def _modified(info: dict[str, Any]) -> datetime:
    """A file's last write from fsspec's details: `mtime` (local disk, epoch seconds) or
    `LastModified` (S3). Unknown: now, so that a sweep with a grace period keeps it."""
    if isinstance(info.get("mtime"), int | float):
        return datetime.fromtimestamp(float(info["mtime"]), UTC)
    modified = info.get("LastModified")
    if isinstance(modified, datetime):
        return modified.astimezone(UTC) if modified.tzinfo else modified.replace(tzinfo=UTC)
    return datetime.now(UTC)
