"""Request bodies: UTF-8 JSON decoded once, every failure a 400 (SPEC §5)."""

from __future__ import annotations

from typing import Any

import msgspec

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
