"""Canned replies: texts agents paste into a conversation; supervisors edit them. A new database
gets the starter set of texts/canned_seed.yml."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_desk import db
from agent_desk.accounts import Agent
from agent_desk.desk_texts import TEXTS
from agent_desk.handoffs import MAX_REPLY, DeskError, clean_text
from agent_desk.text_files import TEXTS_DIR, TextFileError, read_yaml

MAX_TITLE = 100
SEED_FILE = TEXTS_DIR / "canned_seed.yml"


def load_seed(path: Path = SEED_FILE) -> list[tuple[str, str]]:
    """The starter replies as (title, text), checked like a supervisor's edit would be."""
    data = read_yaml(path)
    items = data.get("canned_replies") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise TextFileError(f"{path}: expected a non-empty list `canned_replies` of {{title, text}}")
    seed = []
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict) or set(item) != {"title", "text"}:
            raise TextFileError(f"{path}: canned reply {number} must have exactly `title` and `text`")
        title, text = item["title"], item["text"]
        if not isinstance(title, str) or not isinstance(text, str):
            raise TextFileError(f"{path}: canned reply {number}: title and text must be texts")
        try:
            seed.append((clean_text(title, MAX_TITLE), clean_text(text, MAX_REPLY)))
        except DeskError as exc:
            raise TextFileError(f"{path}: canned reply {number}: {exc.message}") from exc
    return seed


async def seed_if_empty(engine: AsyncEngine, seed: list[tuple[str, str]]) -> None:
    async with engine.begin() as conn:
        count = await conn.scalar(sa.select(sa.func.count()).select_from(db.canned))
        if not count:
            now = time.time()
            await conn.execute(
                db.canned.insert(), [{"title": t, "text": x, "updated_at": now} for t, x in seed]
            )


async def canned(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(db.canned).order_by(db.canned.c.title))).all()
    return [{"id": r.id, "title": r.title, "text": r.text} for r in rows]


async def save_canned(
    engine: AsyncEngine, agent: Agent, canned_id: int | None, title: str, text: str
) -> None:
    title = clean_text(title, MAX_TITLE)
    text = clean_text(text, MAX_REPLY)
    values = {"title": title, "text": text, "updated_by": agent.id, "updated_at": time.time()}
    async with engine.begin() as conn:
        if canned_id is None:
            await conn.execute(db.canned.insert().values(**values))
        else:
            result = await conn.execute(
                db.canned.update().where(db.canned.c.id == canned_id).values(**values)
            )
            if result.rowcount != 1:
                raise DeskError(TEXTS.get("canned_not_found"), 404)


async def delete_canned(engine: AsyncEngine, canned_id: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(db.canned.delete().where(db.canned.c.id == canned_id))
