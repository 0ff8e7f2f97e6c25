from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live import live_server
from xgenerator.cli.demo import LocalServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """One live embedded server per test module."""
    yield from live_server(tmp_path_factory)
