"""Helpers of the workbench tests: a git copy of the project's data, an events store as Rasa writes it,
a desk whose workbench edits that copy."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from agent_desk.config import ROOT
from tests.desk.conftest import CSRF_RE, PASSWORD, DeskFactory, add_account, desk_settings, login

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Dev",
    "GIT_AUTHOR_EMAIL": "dev@example.com",
    "GIT_COMMITTER_NAME": "Dev",
    "GIT_COMMITTER_EMAIL": "dev@example.com",
    "GIT_TERMINAL_PROMPT": "0",
}
NOW = time.time()
DAY = 86400.0


def git(project: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=project, env=GIT_ENV, check=True, capture_output=True, text=True, timeout=60
    ).stdout


PROJECT_DIRS = ("bot/data", "bot/components", "tests/nlu")
PROJECT_FILES = ("domain.yml", "config.yml", "nlu_thresholds.yml", "credentials.yml", "endpoints.yml")


def project_copy(
    tmp_path: Path, thresholds: str | None = None, test_sets: tuple[str, ...] | None = None
) -> Path:
    """What the workbench edits and trains, as `<tmp_path>/project`: the project's data, components,
    NLU test sets and Rasa files, in a new git repository (the repository's own data never changes).
    `test_sets`: only these files of tests/nlu (a run scores every set: 4,600 messages, twice)."""
    project = tmp_path / "project"
    ignore = shutil.ignore_patterns("*.py", "__pycache__", "*.pyc")
    for rel in PROJECT_DIRS:
        shutil.copytree(ROOT / rel, project / rel, ignore=ignore)
    if test_sets is not None:
        kept = [f for f in (project / "tests" / "nlu").glob("*.yml") if f.name in test_sets]
        assert sorted(f.name for f in kept) == sorted(test_sets), test_sets
        for f in (project / "tests" / "nlu").glob("*.yml"):
            if f.name not in test_sets:
                f.unlink()
    for name in PROJECT_FILES:
        shutil.copy2(ROOT / name, project / name)
    if thresholds is not None:
        (project / "nlu_thresholds.yml").write_text(thresholds, encoding="utf-8")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "initial")
    return project


def commits(project: Path) -> list[str]:
    """'author name <email>|subject' of every commit, newest first."""
    return git(project, "log", "--format=%an <%ae>|%s").splitlines()


def user_event(
    text: str, intent: str, confidence: float, ts: float, ranking: list[tuple[str, float]] | None = None,
    entities: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    return {
        "event": "user",
        "timestamp": ts,
        "text": text,
        "parse_data": {
            "text": text,
            "intent": {"name": intent, "confidence": confidence},
            "entities": entities or [],
            "intent_ranking": [{"name": n, "confidence": c} for n, c in (ranking or [(intent, confidence)])],
        },
    }


def action_event(name: str, ts: float) -> dict[str, Any]:
    return {"event": "action", "timestamp": ts, "name": name}


def write_events(path: Path, conversations: dict[str, list[dict[str, Any]]]) -> None:
    """The `events` table of Rasa's SQL tracker store (same columns), events appended in order."""
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, sender_id VARCHAR(255) "
        "NOT NULL, type_name VARCHAR(255) NOT NULL, timestamp FLOAT, intent_name VARCHAR(255), "
        "action_name VARCHAR(255), data TEXT)"
    )
    for sender, events in conversations.items():
        for ev in events:
            conn.execute(
                "INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    sender,
                    ev["event"],
                    ev["timestamp"],
                    (ev.get("parse_data") or {}).get("intent", {}).get("name"),
                    ev.get("name"),
                    json.dumps({**ev, "sender_id": sender}, ensure_ascii=False),
                ),
            )
    conn.commit()
    conn.close()


async def workbench(
    desk_factory: DeskFactory,
    tmp_path: Path,
    project: Path,
    role: str = "trainer",
    username: str = "lan",
    name: str = "Lan",
    env: dict[str, str] | None = None,
) -> tuple[TestClient, str]:
    """A desk (no background tasks) editing `project`, logged in as `username`; (client, CSRF token)."""
    settings = desk_settings(
        tmp_path,
        env={
            "TRAINING_PROJECT_DIR": str(project),
            "RASA_EVENTS_DB": str(tmp_path / "rasa_events.db"),
            **(env or {}),
        },
    )
    client = await desk_factory(settings, background=False)
    await add_account(client, username, role, name)
    await login(client, username) if role != "trainer" else await _login_trainer(client, username)
    token = await csrf_token(client, "/training") if role != "agent" else ""
    return client, token


async def _login_trainer(client: TestClient, username: str) -> None:
    page = await client.get("/login")
    match = CSRF_RE.search(await page.text())
    assert match
    resp = await client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": match.group(1), "next": "/"},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert resp.headers["Location"] == "/training"  # trainers land on their workbench


async def csrf_token(client: TestClient, path: str) -> str:
    page = await client.get(path)
    match = CSRF_RE.search(await page.text())
    assert match, f"no CSRF token on {path}"
    return match.group(1)


GROUP_LINK = re.compile(r'href="/training/groups/(\d+)">([^<]*)</a>')


async def groups_on_page(client: TestClient, query: str = "") -> dict[str, int]:
    """Masked text → group id, as listed on /training."""
    resp = await client.get("/training" + query)
    assert resp.status == 200, await resp.text()
    return {html.unescape(t): int(i) for i, t in GROUP_LINK.findall(await resp.text())}
