"""Where Rasa's start-up time goes, in one process, and whether the fast load changes any answer.

    .venv/bin/python -m bench.profile_startup                  # phases, Rasa's own load
    .venv/bin/python -m bench.profile_startup --fast-start     # phases, deploy/rasa_fast_start.py
    .venv/bin/python -m bench.profile_startup --profile        # + cProfile of the model load
    .venv/bin/python -m bench.profile_startup --compare        # both loads, the same parses?

Phases: importing what `rasa run` imports, `Agent.load` of the cached model (unpacking, graph,
each component's load), the first and the second parse. `--compare` loads the model the stock
way, parses the held-out messages (tests/nlu/heldout_chats.yml), loads it again with the fast
start installed and reports every intent, confidence or entity that differs (none expected).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path
from typing import Any

from devstack import model

HELDOUT = Path(__file__).resolve().parent.parent / "tests" / "nlu" / "heldout_chats.yml"


def heldout_messages(limit: int) -> list[str]:
    from rasa.shared.nlu.training_data.loading import load_data

    return [m.get("text") for m in load_data(str(HELDOUT)).intent_examples][:limit]


def load_agent(model_file: Path) -> Any:
    from rasa.core.agent import Agent

    return Agent.load(str(model_file))


def parse_all(agent: Any, texts: list[str]) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        return [await agent.parse_message(t) for t in texts]

    return asyncio.run(run())


def summary(parsed: dict[str, Any]) -> tuple[Any, ...]:
    intent = parsed.get("intent") or {}
    entities = tuple(
        sorted((e.get("entity"), e.get("value"), e.get("start")) for e in parsed.get("entities", []))
    )
    ranking = tuple(
        (r["name"], round(float(r["confidence"]), 5)) for r in parsed.get("intent_ranking", [])[:3]
    )
    return intent.get("name"), round(float(intent.get("confidence") or 0), 5), ranking, entities


def timed_load(model_file: Path, profile: bool) -> tuple[Any, float]:
    t0 = time.perf_counter()
    if not profile:
        return load_agent(model_file), time.perf_counter() - t0
    prof = cProfile.Profile()
    agent = prof.runcall(load_agent, model_file)
    took = time.perf_counter() - t0
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(40)
    print(out.getvalue())
    return agent, took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model file (default: the cached model of this tree)")
    parser.add_argument("--fast-start", action="store_true", help="install deploy/rasa_fast_start.py first")
    parser.add_argument("--profile", action="store_true", help="cProfile the model load")
    parser.add_argument("--compare", action="store_true", help="stock load vs fast load: same parses?")
    parser.add_argument("--messages", type=int, default=400, help="held-out messages parsed by --compare")
    args = parser.parse_args(argv)
    model_file = args.model or model.model_path()
    if not model_file.exists():
        parser.error(f"no model at {model_file}: run `make train` first")

    t0 = time.perf_counter()
    import rasa.core.run  # noqa: F401  (what `rasa run` imports: Rasa, TensorFlow, Sanic)

    from deploy import rasa_fast_start, rasa_patches, rasa_speedups

    print(f"import rasa.core.run: {time.perf_counter() - t0:.1f} s", flush=True)
    rasa_speedups.install()  # as deploy/rasa_main.py starts Rasa

    def install_fast_start() -> bool:
        refused = rasa_patches.install(rasa_fast_start.PATCHES)
        for line in refused:
            print(line)
        return not refused

    if args.compare:
        texts = heldout_messages(args.messages)
        stock, took = timed_load(model_file, args.profile)
        print(f"Agent.load, Rasa's own: {took:.1f} s", flush=True)
        before = [summary(p) for p in parse_all(stock, texts)]
        del stock
        if not install_fast_start():
            return 1
        fast, took = timed_load(model_file, args.profile)
        print(f"Agent.load, fast start: {took:.1f} s", flush=True)
        after = [summary(p) for p in parse_all(fast, texts)]
        diffs = [(t, a, b) for t, a, b in zip(texts, before, after, strict=True) if a != b]
        for text, a, b in diffs[:10]:
            print(f"  DIFFERS {text!r}: {a} -> {b}")
        print(f"{len(texts)} messages parsed twice: {len(diffs)} differ")
        return 1 if diffs else 0
    if args.fast_start and not install_fast_start():
        return 1
    agent, took = timed_load(model_file, args.profile)
    print(f"Agent.load ({'fast start' if args.fast_start else 'Rasa own'}): {took:.1f} s", flush=True)
    for n in (1, 2):
        t = time.perf_counter()
        parse_all(agent, ["xin chào"])
        print(f"parse {n}: {(time.perf_counter() - t) * 1000:.0f} ms", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
