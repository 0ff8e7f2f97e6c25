"""No async route opens a database session on the event loop: a route that did stalled every
request and stream of its API process while it waited for a pooled connection. (The one read
made on the loop, an online prediction's key and model on an SQLite file, uses a connection
of the loop's own that waits at most 50 ms: tests/api/test_predict_lookup.py.)"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from fastapi.routing import APIRoute

from xgenerator.api import routes


def test_async_routes_reach_the_database_only_through_the_thread_pool() -> None:
    endpoints = [
        route
        for info in pkgutil.iter_modules(routes.__path__)
        for route in importlib.import_module(f"{routes.__name__}.{info.name}").router.routes
        if isinstance(route, APIRoute) and inspect.iscoroutinefunction(route.endpoint)
    ]
    assert len(endpoints) >= 4  # uploads, predictions, importance, streams
    for route in endpoints:
        source = inspect.getsource(route.endpoint)
        # A session opened in the coroutine's own body blocks the loop; dependencies (owned
        # objects, the user) are plain functions FastAPI runs in its thread pool.
        assert "db.session(" not in source, route.path
        for param in inspect.signature(route.endpoint).parameters.values():
            assert "SessionDep" not in str(param.annotation), (route.path, param.name)
