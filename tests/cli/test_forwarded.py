"""A real `xgenerator serve`: X-Forwarded-For from the loopback peer is not believed unless
the operator names the proxy, so per-address limits hold."""

from __future__ import annotations

from pathlib import Path

import httpx

from xgenerator.cli.demo import LocalServer


def signups(server: LocalServer, count: int) -> list[int]:
    codes = []
    for i in range(count):
        response = httpx.post(
            f"{server.url}/users",
            json={"username": f"user{i}", "email": f"user{i}@example.com"},
            headers={"X-Forwarded-For": f"203.0.113.{i}"},
            timeout=30,
        )
        codes.append(response.status_code)
    return codes


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(tmp_path: Path) -> None:
    plain = LocalServer(tmp_path / "plain", env={"XGEN_RATE_LIMIT_SIGNUP": "3"})
    plain.start()
    try:
        # Each request claims another address; the limit still counts the real peer.
        assert signups(plain, 5) == [201, 201, 201, 429, 429]
    finally:
        plain.stop()
    trusting = LocalServer(
        tmp_path / "trusting",
        env={"XGEN_RATE_LIMIT_SIGNUP": "3", "XGEN_TRUSTED_PROXIES": "127.0.0.1"},
    )
    trusting.start()
    try:
        assert signups(trusting, 5) == [201] * 5  # behind a named proxy each is its own client
    finally:
        trusting.stop()
