"""Split long bot messages into chunks a platform accepts."""

from __future__ import annotations

from collections.abc import Callable


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units: an emoji outside the BMP counts twice)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int, length: Callable[[str], int] = len) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` (as measured by ``length``).

    Cuts prefer, in order: a blank line, a line break, a space; a word longer than the limit is
    cut hard. No chunk is empty and joining the chunks loses only the whitespace at the cuts.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    text = text.strip()
    chunks: list[str] = []
    while text:
        if length(text) <= limit:
            chunks.append(text)
            break
        head = _prefix_within(text, limit, length)
        cut = _best_cut(head)
        piece = head[:cut].rstrip() if cut else head
        if not piece:  # only whitespace before the cut: fall back to a hard cut
            piece = head
        chunks.append(piece)
        text = text[len(piece) :].lstrip()
    return chunks


def _prefix_within(text: str, limit: int, length: Callable[[str], int]) -> str:
    """The longest prefix of ``text`` whose measured length is <= limit."""
    if length is len:
        return text[:limit]
    lo, hi = 0, min(len(text), limit)
    while lo < hi:  # binary search: ``length`` is monotonic in the prefix length
        mid = (lo + hi + 1) // 2
        if length(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo]


def _best_cut(head: str) -> int:
    # A weaker separator in the second half beats a stronger one early on (chunks not needlessly
    # short); otherwise take the strongest separator anywhere; 0 means cut hard.
    floor = len(head) // 2
    for min_pos in (floor, 0):
        for sep in ("\n\n", "\n", " "):
            i = head.rfind(sep)
            if i > min_pos:
                return i
    return 0
