"""Where `xgenerator login` keeps the server URL and API key: a JSON file only you can read.

`XGEN_CLIENT_CONFIG` names the file; otherwise `$XDG_CONFIG_HOME/xgenerator/config.json`,
or `~/.config/xgenerator/config.json`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Credentials:
    url: str
    api_key: str


def config_path(environ: Mapping[str, str]) -> Path:
    if environ.get("XGEN_CLIENT_CONFIG"):
        return Path(environ["XGEN_CLIENT_CONFIG"])
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "xgenerator" / "config.json"


def load(path: Path) -> Credentials | None:
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return Credentials(url=str(data["url"]), api_key=str(data["api_key"]))


def save(path: Path, credentials: Credentials) -> None:
    """Written 0600 from the first byte: the key is never readable by others, not even
    briefly (a chmod after writing would leave a window)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = json.dumps({"url": credentials.url, "api_key": credentials.api_key}, indent=2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)  # an older file may have had wider permissions
        handle.write(body + "\n")
