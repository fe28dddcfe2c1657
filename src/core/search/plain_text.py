"""S7: search labels are plain text.

Jira hands back display names, summaries and suggestion labels that may hold HTML (the
JQL autocomplete wraps matches in `<b>…</b>`, and any user can type markup into a display
name). A label is what an HTML parser finds as *text* in that string:

- tags, comments, doctypes, processing instructions and CDATA markers are dropped; the
  text between tags is kept (the text of a `<script>` element too: as text it is inert);
- character references are decoded (`&amp;` → `&`, `&#60;` → `<`);
- when the result still holds something a browser would read as markup — a `<` followed
  by an ASCII letter, `/`, `!` or `?`, produced by decoding (`&lt;b&gt;`) or by nesting
  (`<<b>b>`, `<scr<script>ipt>`) — it is parsed again, at most `MAX_PASSES` times in all;
  a `<` that still starts markup after that is dropped, so the invariant always holds;
- every other `<` is kept (`a < b`, `x<3`, a lone `<`): it is ordinary text, and whoever
  renders a label must escape it like any other text;
- control characters are dropped (before parsing, and again after decoding, before the
  markup check, so that dropping one cannot join a `<` to a letter); runs of whitespace
  become one space, trimmed.

`html.parser` does the parsing (a real tokenizer, not a pattern), so `<img src=x
onerror=alert(1)>` leaves nothing behind, and no nesting trick rebuilds a tag.
"""

from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser
from typing import Final

MAX_PASSES: Final = 3
# What starts a tag, an end tag, a comment/doctype or a processing instruction in HTML.
MARKUP_START: Final = re.compile(r"<(?=[A-Za-z/!?])", re.ASCII)


class _TextOfHtml(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    # Tags, comments, declarations, processing instructions: nothing kept (the default
    # handlers ignore them).

    def parse_marked_section(self, i: int, report: int = 1) -> int:
        # `<![…` outside foreign content is a bogus comment up to the next `>` in HTML5;
        # the stdlib version asserts on `<![` not followed by a name.
        end = self.rawdata.find(">", i + 3)
        return -1 if end < 0 else end + 1


def _text_of_html(value: str) -> str:
    parser = _TextOfHtml()
    try:
        parser.feed(value)
        parser.close()
    except (AssertionError, ValueError):
        # The parser gave up on a malformed construct: keep the string as text; the markup
        # check in `plain_text` still removes anything that could start a tag.
        return value
    return "".join(parser.parts)


def plain_text(value: str) -> str:
    """The plain-text form of a label from Jira (S7); see the module docstring."""
    text = _without_controls(value)
    for _ in range(MAX_PASSES):
        parsed = _text_of_html(text)
        settled = parsed == text
        text = parsed
        if settled or not MARKUP_START.search(text):
            break
    # Controls go first: dropping one could join a `<` to a letter.
    text = " ".join(_without_controls(text).split())
    while MARKUP_START.search(text):  # each round removes characters: it ends
        text = MARKUP_START.sub("", text)
    return text


def _without_controls(text: str) -> str:
    # Whitespace controls (tab, newline) stay for the whitespace collapse.
    return "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch) != "Cc")
