"""Delete conversations idle for longer than the retention period (CONVERSATION_RETENTION_DAYS).

    python -m deploy.purge_conversations [--days N] [--db URL-or-sqlite-path] [--dry-run]

The tracker database is `--db`, else TRACKER_DB_URL (a SQLAlchemy URL), else the SQLite file
RASA_EVENTS_DB of `make run`. A conversation is deleted whole when its newest event is older than
the retention period, so no conversation is left cut in the middle. Prints what it did.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from common.erasure import DEFAULT_RETENTION_DAYS, RETENTION_ENV


def retention_days(env: dict[str, str] | os._Environ[str]) -> int:
    raw = env.get(RETENTION_ENV, "").strip() or str(DEFAULT_RETENTION_DAYS)
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 3650:
        raise SystemExit(f"{RETENTION_ENV} must be a number of days from 1 to 3650, got {raw!r}")
    return int(raw)


def database_url(arg: str | None, env: dict[str, str] | os._Environ[str]) -> str:
    raw = arg or env.get("TRACKER_DB_URL", "").strip()
    if raw:
        return raw if "://" in raw else f"sqlite:///{Path(raw).resolve()}"
    path = env.get("RASA_EVENTS_DB", "").strip() or "var/rasa_events.db"
    return f"sqlite:///{Path(path).resolve()}"


def purge(url: str, days: int, now: float | None = None, dry_run: bool = False) -> tuple[int, int]:
    """(conversations, events) deleted (or that would be, with dry_run)."""
    engine = sa.create_engine(url)
    events = sa.Table("events", sa.MetaData(), autoload_with=engine)
    cutoff = (now if now is not None else time.time()) - days * 86400
    idle = (
        sa.select(events.c.sender_id)
        .group_by(events.c.sender_id)
        .having(sa.func.max(events.c.timestamp) < cutoff)
    )
    with engine.begin() as conn:
        senders = [row[0] for row in conn.execute(idle)]
        count = 0
        for start in range(0, len(senders), 500):
            batch = senders[start : start + 500]
            where = events.c.sender_id.in_(batch)
            if dry_run:
                count += conn.execute(sa.select(sa.func.count()).where(where)).scalar_one()
            else:
                count += conn.execute(events.delete().where(where)).rowcount or 0
    engine.dispose()
    return len(senders), count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, help=f"retention in days (default {RETENTION_ENV} or 180)")
    parser.add_argument("--db", help="tracker database URL or SQLite path")
    parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    args = parser.parse_args(argv)
    days = args.days if args.days is not None else retention_days(os.environ)
    if not 1 <= days <= 3650:
        raise SystemExit("--days must be from 1 to 3650")
    url = database_url(args.db, os.environ)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        print(f"no tracker database at {url}: nothing to purge")
        return 0
    conversations, events = purge(url, days, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb} {conversations} conversation(s), {events} event(s) idle for more than {days} days")
    return 0


if __name__ == "__main__":
    sys.exit(main())
