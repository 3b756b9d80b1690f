"""Full-text search over the history: turning what a person types into a safe FTS5 query.

FTS5's query language treats ``"``, ``*``, ``(``, ``AND``, ``NEAR`` and friends as syntax; a person typing
``C++ "quotes"`` must get matches, not a syntax error. Every word becomes a quoted phrase (all must match),
and the last one also matches as a prefix so results appear while the word is still being typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Snippet markers: private-use characters, so they never collide with message text.
MARK_START = "\ue010"
MARK_END = "\ue011"

_WORD = re.compile(r"[\w]+", re.UNICODE)

# Parameters: the MATCH expression, the most rows. Best matches first (bm25), newer first among equals.
SEARCH_SQL = (
    "SELECT m.id, m.conversation_id, m.role, c.title, "
    f"snippet(message_fts, 0, '{MARK_START}', '{MARK_END}', '…', 12) AS snippet "
    "FROM message_fts JOIN messages m ON m.id = message_fts.rowid "
    "JOIN conversations c ON c.id = m.conversation_id "
    "WHERE message_fts MATCH ? ORDER BY bm25(message_fts), m.id DESC LIMIT ?"
)


@dataclass(frozen=True)
class SearchHit:
    """One message that matches a search, with a short excerpt around the match."""

    conversation_id: int
    message_id: int
    conversation_title: str
    role: str
    snippet: str  # the matched words are wrapped in MARK_START / MARK_END

    @classmethod
    def from_row(cls, row: Any) -> SearchHit:
        return cls(row["conversation_id"], row["id"], row["title"], row["role"], row["snippet"])

    def plain_snippet(self) -> str:
        return self.snippet.replace(MARK_START, "").replace(MARK_END, "")


def fts_query(text: str, *, prefix_last: bool = True) -> str | None:
    """An FTS5 MATCH expression for ``text``: all its words, quoted; None when it has no words."""
    words = _WORD.findall(text)
    if not words:
        return None
    terms = [f'"{w}"' for w in words]
    if prefix_last:
        terms[-1] += " *"
    return " ".join(terms)
