"""JSON request bodies in the core: the one standard-library decoder and encoder.

Adapters may inject a faster decoder (adapters/http/body.py) that raises the same errors.
"""

from __future__ import annotations

import json
from typing import Any

from core.model.errors import BadRequest


def decode_json_body(raw: bytes) -> Any:
    """UTF-8 JSON → a value; invalid UTF-8, invalid JSON or absurd nesting → BadRequest."""
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("the body is not valid UTF-8") from None
    except RecursionError:
        raise BadRequest("the body is nested too deeply") from None
    except ValueError:
        raise BadRequest("the body is not valid JSON") from None


def json_object(raw: bytes) -> dict[str, Any]:
    """`decode_json_body`, and the value must be an object."""
    value = decode_json_body(raw)
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object")
    return value


def encode_json_body(value: Any) -> bytes:
    """Compact UTF-8 JSON (the adapters may inject a faster encoder). A lone surrogate (which
    `decode_json_body` lets through from a `\\ud800` escape, and the adapters' decoder
    refuses) is no UTF-8: BadRequest, as the adapters answer (docs/security.md, "Malformed
    identifiers")."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("the body holds text that is not UTF-8 (a lone surrogate)") from None
