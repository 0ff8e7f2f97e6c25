"""`xgenerator login` and `signup`: the credentials the other commands use."""

from __future__ import annotations

from typing import Annotated

import typer

from xgenerator.cli.command import Json, config_path, console, guarded, print_json
from xgenerator.client import Client
from xgenerator.client import config as client_config


@guarded
def login(
    url: Annotated[str, typer.Option(help="Server URL")] = "http://127.0.0.1:8000",
    api_key: Annotated[str, typer.Option(prompt=True, hide_input=True, help="Your API key")] = "",
    as_json: Json = False,
) -> None:
    """Check the key against the server and save both (file mode 0600; XGEN_CLIENT_CONFIG
    names the file). XGEN_CLIENT_URL and XGEN_CLIENT_API_KEY, when set, win over it."""
    with Client(url, api_key) as client:
        user = client.me()
    path = config_path()
    client_config.save(path, client_config.Credentials(url.rstrip("/"), api_key))
    if as_json:
        print_json({"username": user.username, "user_id": user.user_id, "config": str(path)})
    else:
        console().print(f"logged in as [bold]{user.username}[/] on {url}; saved to {path}")


@guarded
def signup(
    username: str,
    email: str,
    url: Annotated[str, typer.Option(help="Server URL")] = "http://127.0.0.1:8000",
    as_json: Json = False,
) -> None:
    """Create a user and log in as it; prints the API key (shown only this once)."""
    user = Client.create_user(url, username, email)
    client_config.save(config_path(), client_config.Credentials(url.rstrip("/"), user.api_key))
    if as_json:
        print_json(user)
    else:
        console().print(
            f"user [bold]{user.username}[/] created; API key "
            f"[bold]{user.api_key}[/] (saved; shown only once)"
        )
