from __future__ import annotations

from fastapi import APIRouter

import xgenerator

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict[str, str]:
    """Liveness only: answers as soon as the process serves HTTP, touching no dependency."""
    return {"status": "ok", "version": xgenerator.__version__}
