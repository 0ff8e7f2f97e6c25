"""Answering with a stored file: streamed from the artifact store, never read whole."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from fastapi.responses import FileResponse, Response, StreamingResponse

from xgenerator.artifacts import ArtifactStore
from xgenerator.errors import NotFound

# A downloaded file is the user's data, never a page of this origin: no script, no fetch.
DOWNLOAD_CSP = "default-src 'none'; sandbox"


def stored_file(
    store: ArtifactStore,
    key: str,
    media_type: str,
    filename: str,
    *,
    csp: str = DOWNLOAD_CSP,
    disposition: Literal["attachment", "inline"] = "attachment",
) -> Response:
    """Stream a stored file, never read whole into memory. Its file may be gone while its row
    stays (a predictions file is also a dataset, which its owner may delete): then 404."""
    if not store.exists(key):
        raise NotFound("artifact", filename)
    local = store.local_path(key)
    # `private`: the owner's browser may keep its own download; no shared cache may.
    headers = {"Content-Security-Policy": csp, "Cache-Control": "private"}
    if local is not None:
        return FileResponse(
            local,
            media_type=media_type,
            filename=filename,
            headers=headers,
            content_disposition_type=disposition,
        )

    def chunks() -> Iterator[bytes]:
        with store.open(key) as handle:
            while block := handle.read(1 << 20):
                yield block

    return StreamingResponse(
        chunks(),
        media_type=media_type,
        headers={**headers, "Content-Disposition": f'{disposition}; filename="{filename}"'},
    )
