"""The database's clock, for times that several hosts compare (leases).

Each worker's wall clock may be skewed against the others'; a lease written and checked with
the database's own time cannot be, whatever host writes or checks it. SQLite has no
timestamp type: its `CURRENT_TIMESTAMP` is a 'YYYY-MM-DD HH:MM:SS' string with whole
seconds, so there the expression is a `strftime` with milliseconds, in the same
'YYYY-MM-DD HH:MM:SS.fff' UTC text that SQLAlchemy stores, which therefore compares
correctly as text.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from xgenerator.db.tables import UTCDateTime


class db_now(FunctionElement[Any]):  # noqa: N801 - an SQL function, named like one
    """The database's current UTC time plus `offset_s` seconds (a float, may be negative)."""

    type = UTCDateTime()
    inherit_cache = True
    name = "db_now"

    def __init__(self, offset_s: float = 0.0) -> None:
        super().__init__(literal(float(offset_s)))


def _offset(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(next(iter(element.clauses)), **kw)


@compiles(db_now)
def _default(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    # PostgreSQL: now() is the transaction's start, the same for every row it touches.
    return f"(now() + make_interval(secs => {_offset(element, compiler, **kw)}))"


@compiles(db_now, "sqlite")
def _sqlite(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    offset = _offset(element, compiler, **kw)
    return f"strftime('%Y-%m-%d %H:%M:%f', 'now', printf('%+.3f seconds', {offset}))"
