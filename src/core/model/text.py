"""Text every storage engine can hold (docs/security.md, "Malformed identifiers").

PostgreSQL `text` holds no NUL (U+0000) and nothing that is not UTF-8 (a lone surrogate,
U+D800–U+DFFF, which Python strings can carry after a lenient JSON decoder or a
surrogate-escaped argument). Such a value sent as a parameter fails the whole statement —
on the acknowledgement path, every request batched into it. Two rules, in the core so that
both engines answer alike:

- an identifier (anything looked up or stored as a key) must be printable text
  (`str.isprintable`: no control, format, separator-but-space or surrogate character),
  else the request is malformed (400, or 401 before authentication);
- free text that is written anyway (journal details, errors that name remote values) has
  what no engine can hold replaced by U+FFFD.
"""

from __future__ import annotations

import re
from typing import Final

REPLACEMENT: Final = "\ufffd"
# NUL, and every surrogate code point: in a Python string a surrogate is always unpaired
# (a valid pair is decoded to one code point above U+FFFF).
_UNSTORABLE: Final = re.compile("[\x00\ud800-\udfff]")


def storable_text(text: str) -> str:
    """`text` with NUL and lone surrogates replaced by U+FFFD; `text` itself when it holds
    none (the common case costs one scan)."""
    if _UNSTORABLE.search(text) is None:
        return text
    return _UNSTORABLE.sub(REPLACEMENT, text)
