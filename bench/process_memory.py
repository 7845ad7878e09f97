"""Memory of a process tree: RSS and PSS summed over a server and its descendants.

RSS counts every page a process maps, so pages shared between processes (the TensorFlow library,
and everything a Sanic parent loaded before it forked its workers) are counted once per process:
three Rasa processes sharing 500 MiB add 1.5 GiB to an RSS sum. PSS divides each shared page
between the processes that map it, so the sum over a tree is what the tree costs the machine.
PSS comes from /proc/<pid>/smaps_rollup (Linux 4.14+); without it only RSS is reported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TreeMemory:
    rss_mb: float
    pss_mb: float | None  # None when a process's smaps_rollup could not be read


def _parent_of(pid: str) -> int | None:
    try:
        # Fields after the command name, which may itself contain ") ".
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def process_tree(pids: Sequence[int]) -> list[int]:
    """The given processes and all their living descendants (one pass over /proc)."""
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and (parent := _parent_of(d.name)) is not None:
            kids.setdefault(parent, []).append(int(d.name))
    seen: dict[int, None] = {}
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen[pid] = None
            todo.extend(kids.get(pid, []))
    return list(seen)


def _kb(text: str, key: str) -> int | None:
    for line in text.splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return None


def tree_memory(pids: Sequence[int]) -> TreeMemory:
    """RSS and PSS of the processes and their descendants, in MiB."""
    rss_kb, pss_kb, pss_known = 0, 0, True
    for pid in process_tree(pids):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue  # exited between the listing and now
        rss_kb += _kb(status, "VmRSS:") or 0
        try:
            pss = _kb(Path(f"/proc/{pid}/smaps_rollup").read_text(), "Pss:")
        except OSError:
            pss = None
        if pss is None:
            pss_known = False
        else:
            pss_kb += pss
    return TreeMemory(rss_kb / 1024, pss_kb / 1024 if pss_known else None)


class PeakMemory:
    """Samples a process tree in the background; `.rss_mb` and `.pss_mb` are the peaks seen.

    Reading smaps_rollup walks the page tables (a few ms for a Rasa worker), so every 0.5 s
    costs the measured system well under 1 % of a core.
    """

    def __init__(self, pids: Sequence[int], every_s: float = 0.5) -> None:
        self.pids = list(pids)
        self.every_s = every_s
        self.rss_mb = 0.0
        self.pss_mb: float | None = 0.0
        self._task: asyncio.Task[None] | None = None

    def _add(self, m: TreeMemory) -> None:
        self.rss_mb = max(self.rss_mb, m.rss_mb)
        if m.pss_mb is None or self.pss_mb is None:
            self.pss_mb = None
        else:
            self.pss_mb = max(self.pss_mb, m.pss_mb)

    async def _run(self) -> None:
        while True:
            self._add(await asyncio.to_thread(tree_memory, self.pids))
            await asyncio.sleep(self.every_s)

    async def __aenter__(self) -> PeakMemory:
        self._add(tree_memory(self.pids))
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


def describe(rss_mb: float, pss_mb: float | None) -> str:
    return f"RSS {rss_mb:,.0f} MiB, PSS " + (f"{pss_mb:,.0f} MiB" if pss_mb is not None else "n/a")
