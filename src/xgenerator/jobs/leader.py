"""One holder at a time for a duty every worker could do (the reconciler): a lease row,
renewed by its holder and taken over once it expired, by the database's clock. A row and
not an advisory lock, so that it works on SQLite as on PostgreSQL and outlives no process:
a dead holder's lease simply expires."""

from __future__ import annotations

import uuid

from sqlalchemy import CursorResult, or_, update
from sqlalchemy.exc import IntegrityError

from xgenerator.context import Context
from xgenerator.db.clock import db_now
from xgenerator.db.tables import ServiceLease

# This process, as a lease holder (pool children never hold leases).
PROCESS = uuid.uuid4().hex


def hold(context: Context, name: str, ttl_s: float, holder: str = PROCESS) -> bool:
    """Take or renew the lease `name` for `ttl_s` seconds; False while another holds it."""
    with context.db.session() as session:
        result = session.execute(
            update(ServiceLease)
            .where(
                ServiceLease.name == name,
                or_(ServiceLease.holder == holder, ServiceLease.expires_at < db_now()),
            )
            .values(holder=holder, expires_at=db_now(ttl_s))
        )
        assert isinstance(result, CursorResult)  # noqa: S101 - UPDATEs return cursor results
        if result.rowcount == 1:
            return True
        if session.get(ServiceLease, name) is not None:
            return False
    try:  # the first holder ever creates the row; of two at once, the primary key picks one
        with context.db.session() as session:
            session.add(ServiceLease(name=name, holder=holder, expires_at=db_now(ttl_s)))
    except IntegrityError:
        return False
    return True
