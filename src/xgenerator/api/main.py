"""ASGI entry point for `xgenerator api` (uvicorn imports it in each API process)."""

from xgenerator.api.app import create_app
from xgenerator.settings import load_settings

app = create_app(load_settings())
