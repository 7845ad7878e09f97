"""Jinja filters. Everything is escaped first; only http(s) links are turned into anchors."""

from __future__ import annotations

import re
from datetime import datetime

from markupsafe import Markup, escape

from agent_desk.vn_time import VN_TZ

URL_RE = re.compile(r"https?://[^\s<>\"']+")


def linkify(text: str | None) -> Markup:
    if not text:
        return Markup("")
    out: list[str] = []
    pos = 0
    for match in URL_RE.finditer(text):
        out.append(str(escape(text[pos : match.start()])))
        url = match.group(0).rstrip(".,;:)")
        tail = match.group(0)[len(url) :]
        out.append(f'<a href="{escape(url)}" target="_blank" rel="noopener noreferrer">{escape(url)}</a>')
        out.append(str(escape(tail)))
        pos = match.end()
    out.append(str(escape(text[pos:])))
    # Every piece was escaped above; only our own <a> and <br> tags are markup.
    return Markup("".join(out).replace("\n", "<br>"))  # noqa: S704


def clock(ts: float | None) -> str:
    if not ts:
        return ""
    return datetime.fromtimestamp(ts, VN_TZ).strftime("%H:%M:%S %d/%m/%Y")


def duration(seconds: float | None) -> str:
    seconds = int(max(0, seconds or 0))
    if seconds < 60:
        return f"{seconds} giây"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} phút {sec:02d} giây"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} giờ {minutes:02d} phút"


FILTERS = {"linkify": linkify, "clock": clock, "duration": duration}
