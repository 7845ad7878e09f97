"""Replay customer journeys against a running assistant and count those that reach their goal.

    .venv/bin/python -m tests.journeys.replay [--rasa http://127.0.0.1:5005]
        [--outbox var/outbox/messages.jsonl] [--db var/signing.db] [--json reports/journeys.json] [FILE ...]

A journey (tests/journeys/*.yml) is what one customer types, in their own way, and what reaching
the goal means in the bot's words:

    - id: j01
      persona: shop owner, no diacritics
      request: awaiting2          # optional: a fresh demo request with 2 drafts (or awaiting1, any code)
      steps:
        - say: "xem ho so {code} giup e"
        - tap: "SMS"               # press the button whose title contains this text
        - say: "{otp}"             # the latest code sent to the request's phone (the outbox)
      goal: ["Xác minh thành công"]   # every fragment appears in some bot reply of the journey
      never: ["chưa xử lý được yêu cầu này"]  # no bot reply contains these

Placeholders: {code} (the allocated request), {code_dashed} (the same typed "PC05-TK-0000123"),
{phone} (its registered phone) and {otp}. A journey fails when a step cannot be played (a button
missing), when a goal fragment never appears, or when a `never` fragment appears.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests import demo_data

HERE = Path(__file__).resolve().parent
TIMEOUT = aiohttp.ClientTimeout(total=90)


@dataclass
class Result:
    id: str
    ok: bool
    reason: str = ""
    transcript: list[tuple[str, str]] = field(default_factory=list)


class Requests:
    """Demo requests handed out to journeys, each at most once (a signed draft cannot be signed twice)."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.used: set[str] = set()

    def allocate(self, kind: str) -> str:
        if re.fullmatch(r"PC\d{2}[A-Z]{2}\d{7}", kind):
            return kind
        documents = {"awaiting1": 1, "awaiting2": 2}[kind]
        # From the end of the list: the conversation tests take theirs from the start.
        for code in reversed(demo_data.codes_awaiting(self.db, documents)):
            if code not in self.used:
                self.used.add(code)
                return code
        raise RuntimeError(f"no unused demo request with {documents} drafts")

    def phone(self, code: str) -> str:
        return demo_data.sms_contact(self.db, code) or ""


def latest_otp(outbox: Path, to: str) -> str:
    # A journey that never got a code types a wrong one and fails on its goal, not here.
    return demo_data.last_code(outbox, to) or "000000"


def load(paths: list[Path]) -> list[dict[str, Any]]:
    journeys: list[dict[str, Any]] = []
    for p in paths:
        journeys += yaml.safe_load(p.read_text(encoding="utf-8")) or []
    return journeys


async def play(
    session: aiohttp.ClientSession, rasa: str, journey: dict[str, Any], requests: Requests, outbox: Path
) -> Result:
    sender = f"journey-{journey['id']}-{uuid.uuid4().hex[:6]}"
    code = requests.allocate(journey["request"]) if journey.get("request") else ""
    phone = requests.phone(code) if code else ""
    dashed = f"{code[:4]}-{code[4:6]}-{code[6:]}" if code else ""
    bot_texts: list[str] = []
    transcript: list[tuple[str, str]] = []
    buttons: list[dict[str, Any]] = []
    for step in journey["steps"]:
        if "tap" in step:
            hit = [b for b in buttons if step["tap"].lower() in str(b.get("title", "")).lower()]
            if not hit:
                titles = [b.get("title") for b in buttons]
                return Result(journey["id"], False, f"no button {step['tap']!r} in {titles}", transcript)
            text = str(hit[0]["payload"])
        else:
            text = str(step["say"]).format(
                code=code, code_dashed=dashed, phone=phone, otp=latest_otp(outbox, phone)
            )
        url = f"{rasa}/webhooks/rest/webhook"
        async with session.post(url, json={"sender": sender, "message": text}) as resp:
            if resp.status != 200:
                return Result(journey["id"], False, f"HTTP {resp.status}", transcript)
            replies = await resp.json()
        reply = "\n".join(str(m.get("text", "")) for m in replies)
        buttons = [b for m in replies for b in m.get("buttons", [])]
        transcript.append((text, reply + "".join(f"\n  [{b.get('title')}]" for b in buttons)))
        bot_texts.append(reply)
    everything = "\n".join(bot_texts)
    for bad in journey.get("never", []):
        if bad in everything:
            return Result(journey["id"], False, f"said {bad!r}", transcript)
    missing = [g for g in journey.get("goal", []) if g not in everything]
    if missing:
        return Result(journey["id"], False, f"goal not reached: {missing}", transcript)
    return Result(journey["id"], True, "", transcript)


async def replay(rasa: str, journeys: list[dict[str, Any]], db: Path, outbox: Path) -> list[Result]:
    requests = Requests(db)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        return [await play(session, rasa, j, requests, outbox) for j in journeys]


def summary(results: list[Result]) -> str:
    ok = sum(r.ok for r in results)
    lines = [f"journeys reaching their goal: {ok}/{len(results)} ({100 * ok / max(len(results), 1):.1f} %)"]
    for r in results:
        if not r.ok:
            lines.append(f"  ✗ {r.id}: {r.reason}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--rasa", default="http://127.0.0.1:5005")
    parser.add_argument("--db", type=Path, default=Path("var/signing.db"))
    parser.add_argument("--outbox", type=Path, default=Path("var/outbox/messages.jsonl"))
    parser.add_argument("--json", type=Path, default=None, help="write every transcript here")
    args = parser.parse_args()
    files = args.files or sorted(HERE.glob("*.yml"))
    results = asyncio.run(replay(args.rasa, load(files), args.db, args.outbox))
    print(summary(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps([r.__dict__ for r in results], ensure_ascii=False, indent=1), encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
