"""The desk's search (issue 18) on 100,000 conversations: time per query, p50/p95/max.

    .venv/bin/python -m bench.bench_desk_search                     # PostgreSQL, 100,000 rows, 200 queries
    .venv/bin/python -m bench.bench_desk_search --rows 20000 --queries 100
    .venv/bin/python -m bench.bench_desk_search --sqlite            # the same on a SQLite file
    .venv/bin/python -m bench.bench_desk_search --explain           # PostgreSQL's plan of each kind

A fresh database (PostgreSQL: `desk_search_bench_<random>`, dropped at the end) gets the desk's
schema as the desk makes it (db.create_schema, then the trigram index), 30 agents and the
conversations of 60,000 customers: Vietnamese names with their real family-name frequencies,
masked as the signing service masks them, request codes, phones, the four channels, result tags
and dates over two years; a customer may come back (same chat user, same code). Rows go in with
COPY (PostgreSQL, then VACUUM ANALYZE) or executemany (SQLite, then ANALYZE).

The queries are what agents type, built from rows that exist (plus some that find nothing), and go
through the page's own functions: `search_query.parse` then `search.search` (and `search.earlier`
for the conversation page's history). Each is timed alone, after a warm-up round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_desk import db, search_schema
from agent_desk.config import async_db_url
from agent_desk.customer_index import customer_fields
from agent_desk.desk import CLOSE_TAGS, VN_TZ
from agent_desk.folding import fold
from agent_desk.search import earlier, search, search_statement
from agent_desk.search_query import parse
from signing_service.masking import mask_name, mask_phone

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

# Family names and their approximate shares of the population.
FAMILY = [
    ("Nguyễn", 38), ("Trần", 11), ("Lê", 9.5), ("Phạm", 7), ("Hoàng", 5), ("Huỳnh", 5), ("Phan", 4.5),
    ("Vũ", 3.9), ("Võ", 3.9), ("Đặng", 2.1), ("Bùi", 2), ("Đỗ", 1.4), ("Hồ", 1.3), ("Ngô", 1.3),
    ("Dương", 1), ("Lý", 0.5), ("Trương", 0.5), ("Đinh", 0.4), ("Lâm", 0.4), ("Mai", 0.3), ("Tạ", 0.2),
]  # fmt: skip
MIDDLE_MALE = ["Văn", "Hữu", "Đức", "Minh", "Quốc", "Công", "Thành", "Xuân", "Quang", "Ngọc"]
MIDDLE_FEMALE = ["Thị", "Thị", "Thị", "Ngọc", "Thu", "Thanh", "Kim", "Mỹ", "Phương", "Hồng"]
GIVEN_MALE = [
    "An", "Bình", "Cường", "Dũng", "Hùng", "Hải", "Hiếu", "Huy", "Khoa", "Long", "Nam", "Phong",
    "Phúc", "Quân", "Sơn", "Tài", "Thắng", "Thịnh", "Toàn", "Trung", "Tuấn", "Việt", "Vinh", "Đạt",
]  # fmt: skip
GIVEN_FEMALE = [
    "Anh", "Chi", "Dung", "Giang", "Hà", "Hạnh", "Hoa", "Hương", "Lan", "Linh", "Loan", "Mai",
    "Ngân", "Nhung", "Oanh", "Phương", "Quyên", "Thảo", "Trang", "Tuyết", "Uyên", "Vân", "Yến", "Hằng",
]  # fmt: skip
UNITS = ["PC05TK", "PC05HA", "PC01HN", "PC02BD", "PC03DN", "PC04HC", "PC07QN", "PC08KH"]
PREFIXES = ["090", "091", "093", "094", "096", "097", "098", "086", "088", "032", "035", "070", "077"]
CHANNELS = [("zalo", 55), ("telegram", 25), ("rest", 15), ("web", 5)]
ENDINGS = [("closed", 85), ("timed_out", 8), ("cancelled", 7)]
CANCEL_TAGS = ["withdrawn", "customer_restart"]
# The queue preview kept on every row (3 lines, as transcript.preview writes it): rows as wide as the
# desk's, so a scan reads as much as it would.
PREVIEW_LINES = [
    ("user", "Cho tôi hỏi hồ sơ cấp điện của tôi đến bước nào rồi, sao lâu vậy?"),
    ("bot", "Dạ, anh/chị vui lòng cho em xin mã yêu cầu (ví dụ PC05TK0000123) để em tra cứu ạ."),
    ("user", "Tôi muốn gặp nhân viên tư vấn"),
    ("bot", "Em đã chuyển yêu cầu tới nhân viên tư vấn, anh/chị vui lòng chờ trong giây lát ạ."),
    ("user", "Hợp đồng mua bán điện ký ở đâu vậy em? Tôi không mở được đường link"),
    (
        "bot",
        "Dạ, hồ sơ của anh/chị đang ở bước Khảo sát hiện trường, dự kiến hoàn thành trong 2 ngày làm việc.",
    ),
]
CUSTOMERS = 60_000
DAYS = 730


@dataclass
class Customer:
    name: str
    phone: str
    codes: list[str]
    senders: dict[str, str]  # channel -> chat user id


def weighted(rng: random.Random, pairs: Sequence[tuple[str, float]]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def make_customers(rng: random.Random, n: int) -> list[Customer]:
    customers = []
    for i in range(n):
        female = rng.random() < 0.5
        name = " ".join(
            [
                weighted(rng, FAMILY),
                rng.choice(MIDDLE_FEMALE if female else MIDDLE_MALE),
                rng.choice(GIVEN_FEMALE if female else GIVEN_MALE),
            ]
        )
        phone = rng.choice(PREFIXES) + f"{rng.randrange(10**7):07d}"
        codes = [
            f"{rng.choice(UNITS)}{rng.randrange(10**7):07d}" for _ in range(1 if rng.random() < 0.8 else 2)
        ]
        senders = {c: f"{c}-{i}-{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}" for c, _ in CHANNELS}
        customers.append(Customer(name, phone, codes, senders))
    return customers


def make_rows(rng: random.Random, customers: list[Customer], n: int, agents: int) -> Iterator[dict[str, Any]]:
    now = time.time()
    for _ in range(n):
        cust = rng.choice(customers)
        channel = weighted(rng, CHANNELS)
        at = now - rng.random() * DAYS * 86400
        status = weighted(rng, ENDINGS)
        if status == "closed":
            tag = rng.choice(list(CLOSE_TAGS))
        else:
            tag = "queue_timeout" if status == "timed_out" else rng.choice(CANCEL_TAGS)
        claimed = status == "closed"
        row: dict[str, Any] = {
            "sender_id": cust.senders[channel],
            "channel": channel,
            "status": status,
            "request_code": None,
            "requested_at": at,
            "queued_at": at,
            "claimed_at": at + 60 if claimed else None,
            "agent_id": rng.randint(1, agents) if claimed else None,
            "agent_activity_at": at + 300 if claimed else None,
            "closed_at": at + 400,
            "close_tag": tag,
            "last_messages": json.dumps(
                [{"kind": k, "text": t} for k, t in rng.sample(PREVIEW_LINES, 3)], ensure_ascii=False
            ),
            "customer_last_at": at,
            "requeue_count": 0,
            "customer_code": None,
            **customer_fields(None),
        }
        if rng.random() < 0.7:  # the customer gave a request code, so the desk knows them (masked)
            code = rng.choice(cust.codes)
            status_answer = {
                "customer": {"name_masked": mask_name(cust.name), "phone_masked": mask_phone(cust.phone)}
            }
            row.update(request_code=code, customer_code=code, **customer_fields(status_answer))
        yield row


def day(ts: float) -> str:
    return datetime.fromtimestamp(ts, VN_TZ).strftime("%d/%m/%Y")


def make_queries(
    rng: random.Random, rows: list[dict[str, Any]], customers: list[Customer]
) -> list[tuple[str, str, int]]:
    """(kind, text typed, page) for a mix of what agents search."""
    known = [r for r in rows if r["request_code"]]
    by_code = {c: cust for cust in customers for c in cust.codes}
    queries: list[tuple[str, str, int]] = []

    def add(kind: str, text: str, page: int = 1) -> None:
        queries.append((kind, text, page))

    def span(r: dict[str, Any], days: int) -> str:
        start = r["requested_at"] - rng.randint(0, days) * 86400
        return f"{day(start)}-{day(start + days * 86400)}"

    for _ in range(20):
        r = rng.choice(known)
        cust = by_code[r["request_code"]]
        add("full name, diacritics", cust.name)
        add("full name, folded, caps", fold(cust.name).upper())
        add("family + given name", f"{cust.name.split()[0]} {cust.name.split()[-1]}")
        add("request code", r["request_code"].lower())
        add("phone tail", cust.phone[-3:])
        add("whole phone", f"{cust.phone[:4]} {cust.phone[4:7]} {cust.phone[7:]}")
        add("name + channel + month", f"{cust.name} {r['channel']} {span(r, 30)}")
        add("tag + week", f"kq:{r['close_tag']} {span(r, 7)}")
        add("channel alone", r["channel"])
    for family, _ in FAMILY[:10]:
        add("family name alone", family)
        add("family name, page 3", family.lower(), 3)
    for _ in range(10):
        add("name not found", f"{rng.choice(FAMILY)[0]} Xuyên Khương")
    return queries


async def create_database(backend: str) -> tuple[str, str]:
    """(SQLAlchemy URL, name to drop) of a fresh database."""
    if backend == "sqlite":
        path = Path(mkdtemp(prefix="desk-search-")) / "desk.db"
        return f"sqlite:///{path}", str(path)
    name = f"desk_search_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(POSTGRES_URL.replace("postgresql://", "postgres://"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}", name


async def drop_database(backend: str, name: str) -> None:
    if backend == "sqlite":
        await asyncio.to_thread(Path(name).unlink, missing_ok=True)
        return
    admin = await asyncpg.connect(POSTGRES_URL.replace("postgresql://", "postgres://"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def load(engine: AsyncEngine, url: str, rows: list[dict[str, Any]], agents: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            db.agents.insert(),
            [
                {
                    "username": f"agent{i}",
                    "display_name": f"Nhân viên {i}",
                    "role": "agent",
                    "password_hash": "-",
                    "active": True,
                    "created_at": 0.0,
                }
                for i in range(1, agents + 1)
            ],
        )
    columns = list(rows[0])
    if engine.dialect.name == "postgresql":
        conn = await asyncpg.connect(url.replace("postgresql://", "postgres://"))
        try:
            await conn.copy_records_to_table(
                "desk_handoffs", records=[tuple(r[c] for c in columns) for r in rows], columns=columns
            )
            await conn.execute("VACUUM ANALYZE desk_handoffs")  # as autovacuum would leave it
        finally:
            await conn.close()
        return
    async with engine.begin() as sconn:
        for i in range(0, len(rows), 5000):
            await sconn.execute(db.handoffs.insert(), rows[i : i + 5000])
        await sconn.execute(sa.text("ANALYZE"))


def figures(times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return f"{statistics.median(ms):7.1f} {p95:7.1f} {ms[-1]:7.1f}"


async def explain(engine: AsyncEngine, text: str, page: int) -> None:
    statement = search_statement(parse(text), page)
    compiled = statement.compile(engine.sync_engine, compile_kwargs={"literal_binds": True})
    async with engine.connect() as conn:
        plan = (await conn.execute(sa.text(f"EXPLAIN ANALYZE {compiled}"))).scalars().all()
    print(f"\n-- {text!r} page {page}")
    print("\n".join(plan))


async def run(args: argparse.Namespace) -> None:
    backend = "sqlite" if args.sqlite else "postgresql"
    rng = random.Random(18)
    url, name = await create_database(backend)
    engine = db.make_engine(async_db_url(url))
    try:
        await db.create_schema(engine)
        trigram = await search_schema.ensure_name_index(engine)
        customers = make_customers(rng, min(CUSTOMERS, args.rows))
        started = time.perf_counter()
        rows = list(make_rows(rng, customers, args.rows, 30))
        await load(engine, url, rows, 30)
        print(
            f"{backend}: {len(rows):,} conversations loaded in {time.perf_counter() - started:.1f} s", end=""
        )
        print(f" (trigram index on the name: {'yes' if trigram else 'no'})")

        queries = make_queries(rng, rows, customers)
        rng.shuffle(queries)
        queries = queries[: args.queries]
        for _kind, text, page in queries[:10]:  # warm-up: caches and connection pool
            await search(engine, parse(text), page)
        times: dict[str, list[float]] = defaultdict(list)
        hits: dict[str, list[int]] = defaultdict(list)
        for kind, text, page in queries:
            t0 = time.perf_counter()
            result = await search(engine, parse(text), page)
            times[kind].append(time.perf_counter() - t0)
            hits[kind].append(len(result.hits))
        sample = rng.sample(rows, 20)
        async with engine.connect() as conn:
            ids = {
                r.sender_id: r.id
                for r in await conn.execute(
                    sa.select(db.handoffs.c.id, db.handoffs.c.sender_id).where(
                        db.handoffs.c.sender_id.in_([s["sender_id"] for s in sample])
                    )
                )
            }
        for r in sample:
            t0 = time.perf_counter()
            listed, _ = await earlier(
                engine, ids[r["sender_id"]], r["sender_id"], r["request_code"], time.time()
            )
            times["history (conversation page)"].append(time.perf_counter() - t0)
            hits["history (conversation page)"].append(len(listed))

        print(f"\n{'query kind':32} {'n':>4} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'rows':>6}")
        for kind in sorted(times):
            print(
                f"{kind:32} {len(times[kind]):4d} {figures(times[kind])} {statistics.mean(hits[kind]):6.1f}"
            )
        searches = [t for k, ts in times.items() if not k.startswith("history") for t in ts]
        print(f"{'all searches':32} {len(searches):4d} {figures(searches)}")
        if args.explain and backend == "postgresql":
            seen = set()
            for kind, text, page in queries:
                if kind not in seen:
                    seen.add(kind)
                    await explain(engine, text, page)
    finally:
        await engine.dispose()
        if not args.keep:
            await drop_database(backend, name)
        else:
            print(f"kept: {url}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead of PostgreSQL")
    parser.add_argument("--explain", action="store_true", help="print PostgreSQL's plan of each query kind")
    parser.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
