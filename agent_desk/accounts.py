"""Desk accounts: agents, supervisors and trainers (the trainers' workbench only, /training)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_desk import db
from agent_desk.passwords import DUMMY_HASH, hash_password, verify_password

ROLES = ("agent", "supervisor", "trainer")
TRAINER = "trainer"  # NLU trainers: the workbench (/training) only, never the queue or conversations
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{2,63}$")
MIN_PASSWORD_LENGTH = 10


class AccountError(ValueError):
    pass


@dataclass(frozen=True)
class Agent:
    id: int
    username: str
    display_name: str
    role: str

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"

    @property
    def is_trainer(self) -> bool:
        return self.role == TRAINER

    @property
    def may_train(self) -> bool:
        """Whether the trainers' workbench (/training) is open to this account."""
        return self.role in (TRAINER, "supervisor")


def _agent(row: sa.engine.Row) -> Agent:
    return Agent(id=row.id, username=row.username, display_name=row.display_name, role=row.role)


def validate_new(username: str, password: str, role: str, display_name: str) -> None:
    if not USERNAME_RE.match(username):
        raise AccountError("username: 3-64 characters, lower-case letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if not display_name.strip() or len(display_name) > 100:
        raise AccountError("display name: 1-100 characters")


async def create(engine: AsyncEngine, username: str, password: str, role: str, display_name: str) -> Agent:
    username = username.strip().lower()
    display_name = display_name.strip()
    validate_new(username, password, role, display_name)
    async with engine.begin() as conn:
        exists = await conn.scalar(sa.select(db.agents.c.id).where(db.agents.c.username == username))
        if exists:
            raise AccountError(f"account {username!r} already exists")
        result = await conn.execute(
            db.agents.insert().values(
                username=username,
                display_name=display_name,
                role=role,
                password_hash=hash_password(password),
                active=True,
                created_at=time.time(),
            )
        )
        return Agent(db.inserted_id(result), username, display_name, role)


async def set_password(engine: AsyncEngine, username: str, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    async with engine.begin() as conn:
        result = await conn.execute(
            db.agents.update()
            .where(db.agents.c.username == username)
            .values(password_hash=hash_password(password))
        )
        if result.rowcount != 1:
            raise AccountError(f"no account {username!r}")
        # A new password logs the account out everywhere.
        agent_id = await conn.scalar(sa.select(db.agents.c.id).where(db.agents.c.username == username))
        await conn.execute(db.sessions.delete().where(db.sessions.c.agent_id == agent_id))


async def set_active(engine: AsyncEngine, username: str, active: bool) -> None:
    async with engine.begin() as conn:
        result = await conn.execute(
            db.agents.update().where(db.agents.c.username == username).values(active=active)
        )
        if result.rowcount != 1:
            raise AccountError(f"no account {username!r}")
        if not active:
            agent_id = await conn.scalar(sa.select(db.agents.c.id).where(db.agents.c.username == username))
            await conn.execute(db.sessions.delete().where(db.sessions.c.agent_id == agent_id))


async def authenticate(engine: AsyncEngine, username: str, password: str) -> Agent | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(sa.select(db.agents).where(db.agents.c.username == username.strip().lower()))
        ).first()
    if row is None or not row.active:
        verify_password(password, DUMMY_HASH)  # same cost as a real check
        return None
    return _agent(row) if verify_password(password, row.password_hash) else None


async def get(engine: AsyncEngine, agent_id: int) -> Agent | None:
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(db.agents).where(db.agents.c.id == agent_id))).first()
    return _agent(row) if row is not None and row.active else None


async def list_all(engine: AsyncEngine) -> list[tuple[Agent, bool]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(db.agents).order_by(db.agents.c.username))).all()
    return [(_agent(r), bool(r.active)) for r in rows]
