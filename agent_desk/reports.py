"""Reports for supervisors: per day and per agent, over a range of Vietnamese calendar days.

Every figure is about the handoffs *requested* in the range (`desk_handoffs.requested_at`), each
counted on the day of its request, and the satisfaction answers to them (`desk_csat`):

- conversations: requests for a human; per agent, those the agent has (had) in hand;
- closed, timed out, withdrawn: how they ended (`closed` = handed back by an agent);
- waiting time: from the request to the claim; requests nobody took (timed out, withdrawn) count
  with their whole wait. Shown as p50 and p95, nearest-rank: the smallest value with at least
  50 % (95 %) of the values at or below it, always one of the measured waits;
- first response: from the claim to the agent's first message (`first_reply_at`), average; a first
  message sent before the last claim (by a colleague, before the conversation went back to the
  queue) is left out;
- handling time: from the claim to the hand-back, average, closed conversations only;
- CSAT: average score 1..5, answers and surveys asked.

The page draws inline SVG bar charts from the same figures (no script, nothing from elsewhere) and
`/reports.csv` exports both tables (UTF-8 with BOM, so Excel reads the Vietnamese).
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_desk import db, transcript
from agent_desk.desk_texts import REPORT_TEXTS
from agent_desk.vn_time import VN_TZ

DEFAULT_DAYS = 7
MAX_DAYS = 366
MAX_COMMENTS = 50
DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


class ReportError(ValueError):
    """A refused range; the message is shown as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# ---------------------------------------------------------------------- the range
@dataclass(frozen=True)
class Period:
    start: date  # first day, inclusive
    end: date  # last day, inclusive

    @property
    def start_ts(self) -> float:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=VN_TZ).timestamp()

    @property
    def end_ts(self) -> float:
        """The first second after the last day."""
        after = self.end + timedelta(days=1)
        return datetime(after.year, after.month, after.day, tzinfo=VN_TZ).timestamp()

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


def today_vn(now: float | None = None) -> date:
    return datetime.fromtimestamp(time.time() if now is None else now, VN_TZ).date()


def _parse_day(raw: str, what: str) -> date:
    raw = raw.strip()
    if not (raw.isascii() and DATE_RE.match(raw)):
        raise ReportError(REPORT_TEXTS.get("bad_date", what=what))
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ReportError(REPORT_TEXTS.get("no_such_date", what=what, raw=raw)) from None


def parse_period(raw_from: str | None, raw_to: str | None, now: float | None = None) -> Period:
    """The range asked for; by default the last seven days, today included."""
    end = _parse_day(raw_to, REPORT_TEXTS.get("end_date")) if raw_to else today_vn(now)
    start = (
        _parse_day(raw_from, REPORT_TEXTS.get("start_date"))
        if raw_from
        else end - timedelta(days=DEFAULT_DAYS - 1)
    )
    if start > end:
        raise ReportError(REPORT_TEXTS.get("start_after_end"))
    if (end - start).days + 1 > MAX_DAYS:
        raise ReportError(REPORT_TEXTS.get("too_many_days", max_days=MAX_DAYS))
    return Period(start, end)


# ---------------------------------------------------------------------- figures
def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least p % of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass
class Figures:
    conversations: int = 0
    closed: int = 0
    timed_out: int = 0
    cancelled: int = 0
    waits: list[float] = field(default_factory=list)
    first_responses: list[float] = field(default_factory=list)
    handling: list[float] = field(default_factory=list)
    scores: list[int] = field(default_factory=list)
    surveys: int = 0

    def add(self, row: Any) -> None:
        self.conversations += 1
        if row.status == "closed":
            self.closed += 1
        elif row.status == "timed_out":
            self.timed_out += 1
        elif row.status == "cancelled":
            self.cancelled += 1
        if row.claimed_at is not None:
            self.waits.append(max(0.0, row.claimed_at - row.requested_at))
            if row.first_reply_at is not None and row.first_reply_at >= row.claimed_at:
                self.first_responses.append(row.first_reply_at - row.claimed_at)
            if row.status == "closed" and row.closed_at is not None:
                self.handling.append(max(0.0, row.closed_at - row.claimed_at))
        elif row.status in {"timed_out", "cancelled"} and row.closed_at is not None:
            self.waits.append(max(0.0, row.closed_at - row.requested_at))
        if row.csat_asked_at is not None:
            self.surveys += 1
            if row.score is not None:
                self.scores.append(int(row.score))

    @property
    def wait_p50(self) -> float | None:
        return percentile(self.waits, 50)

    @property
    def wait_p95(self) -> float | None:
        return percentile(self.waits, 95)

    @property
    def first_response_avg(self) -> float | None:
        return _mean(self.first_responses)

    @property
    def handling_avg(self) -> float | None:
        return _mean(self.handling)

    @property
    def csat_avg(self) -> float | None:
        return _mean([float(s) for s in self.scores])

    @property
    def csat_answers(self) -> int:
        return len(self.scores)


@dataclass
class AgentFigures:
    agent_id: int
    name: str
    username: str
    figures: Figures


@dataclass
class Report:
    period: Period
    total: Figures
    days: list[tuple[date, Figures]]
    agents: list[AgentFigures]
    comments: list[dict[str, Any]]


async def build(engine: AsyncEngine, period: Period) -> Report:
    h, c, a = db.handoffs, db.csat, db.agents
    in_range = sa.and_(h.c.requested_at >= period.start_ts, h.c.requested_at < period.end_ts)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    h.c.status,
                    h.c.requested_at,
                    h.c.claimed_at,
                    h.c.closed_at,
                    h.c.first_reply_at,
                    h.c.agent_id,
                    c.c.score,
                    c.c.asked_at.label("csat_asked_at"),
                )
                .select_from(h.outerjoin(c, c.c.handoff_id == h.c.id))
                .where(in_range)
            )
        ).all()
        agent_rows = (await conn.execute(sa.select(a.c.id, a.c.display_name, a.c.username))).all()
        comment_rows = (
            await conn.execute(
                sa.select(c.c.handoff_id, c.c.score, c.c.comment, c.c.commented_at, a.c.display_name)
                .select_from(c.join(h, c.c.handoff_id == h.c.id).join(a, c.c.agent_id == a.c.id))
                .where(in_range, c.c.comment.is_not(None))
                .order_by(c.c.commented_at.desc())
                .limit(MAX_COMMENTS)
            )
        ).all()
    total = Figures()
    by_day = {d: Figures() for d in period.days}
    by_agent: dict[int, Figures] = {}
    for row in rows:
        total.add(row)
        day = datetime.fromtimestamp(row.requested_at, VN_TZ).date()
        if day in by_day:
            by_day[day].add(row)
        if row.agent_id is not None:
            by_agent.setdefault(row.agent_id, Figures()).add(row)
    names = {r.id: (r.display_name, r.username) for r in agent_rows}
    agents = [
        AgentFigures(agent_id, *names.get(agent_id, (f"#{agent_id}", "")), figures)
        for agent_id, figures in by_agent.items()
    ]
    agents.sort(key=lambda x: (x.name.lower(), x.agent_id))
    comments = [
        {
            "handoff_id": r.handoff_id,
            "score": r.score,
            # Customers type phone numbers and e-mails into comments: staff see them masked.
            "comment": transcript.for_staff(r.comment or ""),
            "at": r.commented_at,
            "agent_name": r.display_name,
        }
        for r in comment_rows
    ]
    return Report(period, total, sorted(by_day.items()), agents, comments)


# ---------------------------------------------------------------------- charts
@dataclass
class Bar:
    x: float
    y: float
    w: float
    h: float
    css: str
    title: str


@dataclass
class Chart:
    title: str
    width: int
    height: int
    plot_left: int
    plot_bottom: int
    bars: list[Bar]
    xlabels: list[tuple[float, str]]
    yticks: list[tuple[float, str]]
    legend: list[tuple[str, str]]
    empty: bool


# Tops of the value axis: half of each is a round number too (the axis shows 0, half and top).
DURATION_TOPS = (20, 60, 120, 240, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400)


def nice_top(value: float) -> float:
    """2, 4 or 10 times a power of ten, at least `value` (at least 2)."""
    power = 1
    while True:
        for step in (2, 4, 10):
            if step * power >= value:
                return float(step * power)
        power *= 10


def duration_top(value: float) -> float:
    for top in DURATION_TOPS:
        if top >= value:
            return float(top)
    return float(math.ceil(value / 86400) * 86400)


def bar_chart(
    title: str,
    labels: list[str],
    series: list[tuple[str, str, list[float | None]]],
    stacked: bool = False,
    fmt: Any = lambda v: f"{v:g}",
    top: float | None = None,
    width: int = 760,
    height: int = 240,
) -> Chart:
    """Geometry of a vertical bar chart: `series` are (name, css class, one value per label)."""
    left, right, top_pad, bottom = 70, 10, 10, 40
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    n = max(1, len(labels))
    if stacked:
        peak = max(
            (sum(v or 0 for v in col) for col in zip(*(s[2] for s in series), strict=False)), default=0
        )
    else:
        peak = max((v or 0 for s in series for v in s[2]), default=0)
    top = top or nice_top(float(peak))
    slot = plot_w / n
    groups = 1 if stacked else len(series)
    bar_w = max(1.0, slot * 0.75 / groups)
    bars: list[Bar] = []
    for i, label in enumerate(labels):
        base = float(height - bottom)
        for j, (name, css, values) in enumerate(series):
            value = values[i]
            if value is None or value <= 0:
                continue
            h = plot_h * min(value, top) / top
            x = left + i * slot + slot * 0.125 + (0 if stacked else j * bar_w)
            y = base - h if stacked else height - bottom - h
            bars.append(
                Bar(
                    round(x, 1),
                    round(y, 1),
                    round(bar_w, 1),
                    round(h, 1),
                    css,
                    f"{label}: {name} {fmt(value)}",
                )
            )
            if stacked:
                base -= h
    every = max(1, math.ceil(n / 14))  # at most 14 labels under the axis
    xlabels = [
        (round(left + i * slot + slot / 2, 1), label) for i, label in enumerate(labels) if i % every == 0
    ]
    yticks = [(round(height - bottom - plot_h * k / 2, 1), fmt(top * k / 2)) for k in range(3)]
    return Chart(
        title=title,
        width=width,
        height=height,
        plot_left=left,
        plot_bottom=height - bottom,
        bars=bars,
        xlabels=xlabels,
        yticks=yticks,
        legend=[(name, css) for name, css, _ in series],
        empty=not bars,
    )


def short_duration(seconds: float | None) -> str:
    """ "45 giây", "4 phút", "4 phút 10 giây", "1 giờ 05 phút"; "—" for no value."""
    if seconds is None:
        return "—"
    total = max(0, int(round(seconds)))
    if total < 60:
        return REPORT_TEXTS.get("duration_seconds", seconds=total)
    minutes, sec = divmod(total, 60)
    if minutes < 60:
        if sec:
            return REPORT_TEXTS.get("duration_minutes_seconds", minutes=minutes, seconds=sec)
        return REPORT_TEXTS.get("duration_minutes", minutes=minutes)
    hours, minutes = divmod(minutes, 60)
    if minutes:
        return REPORT_TEXTS.get("duration_hours_minutes", hours=hours, minutes=minutes)
    return REPORT_TEXTS.get("duration_hours", hours=hours)


def charts(report: Report) -> list[Chart]:
    labels = [d.strftime("%d/%m") for d, _ in report.days]
    days = [f for _, f in report.days]
    out = [
        bar_chart(
            REPORT_TEXTS.get("chart_requests"),
            labels,
            [
                (REPORT_TEXTS.get("legend_closed"), "bar-closed", [float(f.closed) for f in days]),
                (REPORT_TEXTS.get("legend_timed_out"), "bar-timeout", [float(f.timed_out) for f in days]),
                (
                    REPORT_TEXTS.get("legend_other"),
                    "bar-other",
                    [float(f.conversations - f.closed - f.timed_out) for f in days],
                ),
            ],
            stacked=True,
            fmt=lambda v: f"{v:.0f}",
        ),
        bar_chart(
            REPORT_TEXTS.get("chart_waits"),
            labels,
            [
                ("p50", "bar-p50", [f.wait_p50 for f in days]),
                ("p95", "bar-p95", [f.wait_p95 for f in days]),
            ],
            fmt=short_duration,
            top=duration_top(max((f.wait_p95 or 0.0 for f in days), default=0.0)),
        ),
    ]
    if report.agents:
        out.append(
            bar_chart(
                REPORT_TEXTS.get("chart_csat"),
                [x.name[:14] for x in report.agents],
                [("CSAT", "bar-csat", [x.figures.csat_avg for x in report.agents])],
                fmt=lambda v: f"{v:.1f}",
                top=5.0,
            )
        )
    return out


# ---------------------------------------------------------------------- CSV
# The columns of _csv_row, in order; their headers are texts of texts/desk.yml.
CSV_COLUMNS = (
    "csv_scope",
    "csv_name",
    "csv_conversations",
    "csv_closed",
    "csv_timed_out",
    "csv_cancelled",
    "csv_wait_p50",
    "csv_wait_p95",
    "csv_first_response",
    "csv_handling",
    "csv_csat",
    "csv_answers",
    "csv_surveys",
)
CSV_HEADER = [REPORT_TEXTS.get(column) for column in CSV_COLUMNS]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.1f}"
    text = str(value)
    # A name starting with = + - @ would be a formula in a spreadsheet: keep it text.
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


def _csv_row(scope: str, name: str, f: Figures, per_agent: bool = False) -> list[str]:
    values: list[Any] = [
        scope,
        name,
        f.conversations,
        f.closed,
        None if per_agent else f.timed_out,
        None if per_agent else f.cancelled,
        f.wait_p50,
        f.wait_p95,
        f.first_response_avg,
        f.handling_avg,
        None if f.csat_avg is None else f"{f.csat_avg:.2f}",
        f.csat_answers,
        f.surveys,
    ]
    return [_cell(v) for v in values]


def to_csv(report: Report) -> str:
    out = io.StringIO()
    out.write("\ufeff")  # Excel opens UTF-8 only with a byte order mark
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for day, f in report.days:
        writer.writerow(_csv_row(REPORT_TEXTS.get("csv_scope_day"), day.isoformat(), f))
    for x in report.agents:
        writer.writerow(_csv_row(REPORT_TEXTS.get("csv_scope_agent"), x.name, x.figures, per_agent=True))
    writer.writerow(
        _csv_row(
            REPORT_TEXTS.get("csv_scope_total"),
            f"{report.period.start.isoformat()}..{report.period.end.isoformat()}",
            report.total,
        )
    )
    return out.getvalue()
