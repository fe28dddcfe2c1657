"""Request bodies, shared by every transport's routes: read whole under the size limit (413),
UTF-8 JSON decoded once, every decoding failure a 400 (SPEC §5, §8.0)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.exceptions import HTTPException
from litestar.types import Receive

from core.model.errors import BadRequest

_decoder = msgspec.json.Decoder()


def decode_json(raw: bytes) -> Any:
    """Decode a UTF-8 JSON body; invalid UTF-8, invalid JSON or absurd nesting → BadRequest."""
    try:
        return _decoder.decode(raw)
    except UnicodeDecodeError:
        raise BadRequest("the body is not valid UTF-8") from None
    except msgspec.DecodeError:
        raise BadRequest("the body is not valid JSON") from None
    except RecursionError:
        raise BadRequest("the body is nested too deeply") from None


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it passes `limit` (chunked uploads)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Any = await receive()
        if message["type"] == "http.disconnect":
            raise HTTPException(status_code=400, detail="the client disconnected")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise HTTPException(status_code=413, detail="request body is too large")
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
