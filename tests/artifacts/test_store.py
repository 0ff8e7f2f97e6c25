"""The artifact store on a local directory and on S3 (moto's server over HTTP): the same
contract on both, so nothing above `artifacts/` needs to know which one it runs on."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from tests.support import S3Server, unreachable_s3_store
from xgenerator.artifacts import ArtifactStore, open_store
from xgenerator.errors import ServiceUnavailable
from xgenerator.settings import Settings

UNSAFE_KEYS = ["/etc/passwd", "../outside", "models/../../x", "a//b", "", "./a", "a\\b", "a/"]


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "file":
        return open_store(Settings(data_dir=tmp_path))
    storage: dict[str, str] = request.getfixturevalue("s3_storage")
    return open_store(Settings(**storage))  # type: ignore[arg-type]


def test_bytes_round_trip(store: ArtifactStore) -> None:
    key = store.new_key("models", ".ubj")
    assert not store.exists(key)
    store.put_bytes(key, b"booster")
    assert store.exists(key)
    assert store.get_bytes(key) == b"booster"
    assert store.size(key) == 7
    store.put_bytes(key, b"replaced")
    assert store.get_bytes(key) == b"replaced"
    store.delete(key)
    assert not store.exists(key)
    store.delete(key)  # a second delete is fine: cleanup must be safe to repeat


def test_put_file_and_read_back_through_open(store: ArtifactStore, tmp_path: Path) -> None:
    local = tmp_path / "upload.parquet"
    local.write_bytes(b"x" * 100_000)
    key = store.new_key("datasets", ".parquet")
    store.put_file(local, key)
    assert store.size(key) == 100_000
    with store.open(key) as handle:
        handle.seek(99_990)
        assert handle.read() == b"x" * 10
    path = store.local_path(key)
    if store.protocol == "file":
        assert path is not None and path.read_bytes() == local.read_bytes()
    else:
        assert path is None  # readers fall back to `open`


def test_write_through_open(store: ArtifactStore) -> None:
    key = store.new_key("results", ".csv")
    with store.open(key, "wb") as handle:
        handle.write(b"a,b\n1,2\n")
    assert store.get_bytes(key) == b"a,b\n1,2\n"


def test_a_missing_key_is_file_not_found(store: ArtifactStore) -> None:
    with pytest.raises(FileNotFoundError):
        store.get_bytes("models/missing.ubj")
    with pytest.raises(FileNotFoundError):
        store.size("models/missing.ubj")


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_unsafe_keys_are_refused(store: ArtifactStore, key: str) -> None:
    for call in (store.exists, store.get_bytes, store.size, store.delete, store.local_path):
        with pytest.raises(ValueError, match="unsafe artifact key"):
            call(key)
    with pytest.raises(ValueError, match="unsafe artifact key"):
        store.put_bytes(key, b"x")


def test_s3_keys_live_under_the_prefix(s3_server: S3Server, s3_storage: dict[str, str]) -> None:
    store = open_store(Settings(**s3_storage))  # type: ignore[arg-type]
    store.put_bytes("models/a.ubj", b"1")
    store.put_bytes("datasets/b.parquet", b"2")
    assert s3_server.keys(s3_storage["storage_url"]) == ["datasets/b.parquet", "models/a.ubj"]


def test_another_store_sees_writes_and_deletes_at_once(s3_storage: dict[str, str]) -> None:
    """Other hosts write to the bucket all the time: no store may answer from a cache, nor
    share its client with another store."""
    writer = open_store(Settings(**s3_storage))  # type: ignore[arg-type]
    reader = open_store(Settings(**s3_storage))  # type: ignore[arg-type]
    assert reader.fs is not writer.fs
    assert not reader.exists("checkpoints/j.ubj")
    writer.put_bytes("checkpoints/j.ubj", b"1")
    assert reader.exists("checkpoints/j.ubj")
    writer.delete("checkpoints/j.ubj")
    assert not reader.exists("checkpoints/j.ubj")


def _read_in_child(store: ArtifactStore, key: str, out: multiprocessing.Queue[object]) -> None:
    try:
        out.put(store.get_bytes(key))
    except Exception as exc:  # sent back to the parent, which fails the test
        out.put(repr(exc))


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_uses_its_own_connection(s3_storage: dict[str, str]) -> None:
    """Celery's prefork pool forks after the parent used the store; s3fs clients are tied to
    the process that made them ("This class is not fork-safe")."""
    store = open_store(Settings(**s3_storage))  # type: ignore[arg-type]
    store.put_bytes("models/m.ubj", b"model")
    assert store.get_bytes("models/m.ubj") == b"model"  # the parent's client is live
    fork = multiprocessing.get_context("fork")
    out: multiprocessing.Queue[object] = fork.Queue()
    child = fork.Process(target=_read_in_child, args=(store, "models/m.ubj", out))
    child.start()
    got = out.get(timeout=60)
    child.join(30)
    assert got == b"model"
    assert store.get_bytes("models/m.ubj") == b"model"  # and the parent's still works


def test_an_unreachable_store_is_service_unavailable() -> None:
    with unreachable_s3_store() as store:
        with pytest.raises(ServiceUnavailable, match="artifact store unavailable"):
            store.put_bytes("models/a.ubj", b"1")
        with pytest.raises(ServiceUnavailable):
            store.get_bytes("models/a.ubj")
        with pytest.raises(ServiceUnavailable):
            store.exists("models/a.ubj")
        store.delete("models/a.ubj")  # best effort: logged, never raised
