"""Run the test suite as a few independent pytest processes at once; one exit code, one top-15.

    python -m scripts.test_groups [--jobs N] [--only NAME,...] [--out DIR] [--python NAME=EXE]
                                  [--no-model] [--list] [--check] [-- PYTEST_ARGS...]

The suite is split into GROUPS by directory. Tests that share the session's Rasa server
(tests/conftest.py `rasa_stack`) stay in one group, so no group starts a Rasa server another could
have lent it; the last group is "everything else" (tests/ minus the other groups' paths), so a new
test directory is never left out. `--check` proves it: the groups together collect exactly the tests
a plain `pytest` collects.

Each group gets its own port range (TEST_PORT_RANGE, tests/ports.py, outside the kernel's ephemeral
range), its own --basetemp and its own JUnit XML in --out. Everything after `--` goes to every group's
pytest unchanged (-m, -k, -x, ...); if they name test paths (tests/service, a::node), the caller
chose the tests and one plain pytest runs them. Exit code: 0 if every group passed or selected
nothing; 5 if no group selected anything; otherwise the first failing group's code.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET  # noqa: S405 (our own pytest's JUnit files)
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORT_BASE, PORTS_PER_GROUP = 20000, 2000  # 20000-31999 for 6 groups: below Linux's ephemeral 32768-60999
NO_TESTS = 5  # pytest's exit code when nothing was selected
DESCRIPTION = "Run the test suite as a few independent pytest processes at once."


@dataclass(frozen=True)
class Group:
    name: str
    paths: tuple[str, ...]  # empty: tests/ minus every other group's paths
    why: str


# Wall times on 2 cores, 3 at once (2026-12-07): browser ~630 s, service ~750 s, servers ~640 s,
# rasa ~420 s with the trainer's tests (~215 s of it), rest ~340 s. With fewer jobs than groups, the
# next group starts when one ends. The session's Rasa must be the first group's
# (with_shared_rasa_modules), so "rasa" is listed first and started by order of START below.
BASE_GROUPS = (
    Group(
        "rasa",
        (
            "tests/conversations",
            "tests/test_closed_doors.py",
            "tests/browser/test_desk_e2e.py",
            # desk tests that import Rasa or rasa_sdk in the test process
            "tests/desk/test_bot_failures.py",
            "tests/desk/test_broker.py",
            "tests/desk/test_csat.py",
        ),
        "the session's rasa_stack (one Rasa server) and the desk tests around it",
    ),
    Group(
        "browser",
        ("tests/browser",),
        "chromium against the desk; the trainers' workbench with a Rasa of its own and a real fine-tune",
    ),
    Group(
        "servers",
        ("tests/faults", "tests/connectors", "tests/fuzz"),
        "tests with servers of their own: scaled stacks, 2-worker Rasa, channel stacks",
    ),
    Group(
        "service",
        (
            "tests/service",
            "tests/desk",
            "tests/notifier",
            "tests/test_env_numbers.py",
            "tests/test_production_defaults.py",
            "tests/test_personal_text.py",
        ),
        "signing service, desk, notifier: no Rasa import, so they run on the services' own Python",
    ),
    Group(
        "trainer",
        ("tests/trainer",),
        "the trainer's commands: tiny models trained in the test process (not the session's Rasa)",
    ),
    Group("rest", (), "everything else: actions, deploy, NLU, devstack, bench, ..."),
)
# Longest first; the three after the first wave take the slots as they free up. The trainer's tests
# (about 215 s) were in the rasa group, which waited for the browser group: the longest chain.
START = ("browser", "service", "servers", "rasa", "rest", "trainer")


SHARED_RASA = re.compile(r"\b(rasa_stack|rasa_env)\b")  # the fixtures of the session's Rasa server


def with_shared_rasa_modules(groups: tuple[Group, ...]) -> tuple[Group, ...]:
    """The first group plus every test module elsewhere that asks for the session's Rasa server:
    in another group it would start a second one (about 75 s of CPU and 1.3 GB per worker)."""
    first, *others = groups
    joining = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if any(rel == p or rel.startswith(p + "/") for p in first.paths):
            continue
        if SHARED_RASA.search(path.read_text(encoding="utf-8", errors="replace")):
            joining.append(rel)
    return (Group(first.name, (*first.paths, *joining), first.why), *others)


GROUPS = with_shared_rasa_modules(BASE_GROUPS)


@dataclass
class Run:
    group: Group
    index: int
    out: Path
    python: str
    pytest_args: list[str]
    popen: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    ended: float = 0.0
    code: int | None = None
    cpu_s: float | None = None  # user + system CPU of pytest and every process it waited for
    log: Path = field(init=False)
    junit: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.out / f"{self.group.name}.log"
        self.junit = self.out / f"{self.group.name}.xml"

    def command(self, extra: list[str]) -> list[str]:
        return [self.python, "-m", "pytest", *selection(self.group), *extra, *self.pytest_args]

    def env(self) -> dict[str, str]:
        low = PORT_BASE + self.index * PORTS_PER_GROUP
        env = {**os.environ, "TEST_PORT_RANGE": f"{low}-{low + PORTS_PER_GROUP - 1}"}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        return env

    def start(self) -> None:
        extra = [f"--junitxml={self.junit}", f"--basetemp={self.out / (self.group.name + '-tmp')}"]
        with open(self.log, "wb") as log:
            self.popen = subprocess.Popen(
                self.command(extra),
                cwd=ROOT,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C here stops the group and the servers it started
            )
        self.started = time.monotonic()

    def poll(self) -> bool:
        if self.popen is None or self.code is not None:
            return self.code is not None
        try:
            # wait4, not Popen.poll: the CPU the group cost (its servers and subprocesses included)
            # is where test time goes on a machine with few cores.
            pid, status, usage = os.wait4(self.popen.pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere
            code = self.popen.poll()
            if code is None:
                return False
        else:
            if pid == 0:
                return False
            code = os.waitstatus_to_exitcode(status)
            self.popen.returncode = code
            self.cpu_s = usage.ru_utime + usage.ru_stime
        self.code, self.ended = code, time.monotonic()
        return True

    def stop(self) -> None:
        """SIGINT first: pytest then runs the fixtures' teardown, which stops the servers it started
        (each in a session of its own, out of reach of the signals sent to the group)."""
        for sig, wait in ((signal.SIGINT, 60), (signal.SIGTERM, 10), (signal.SIGKILL, None)):
            if self.popen is None or self.popen.poll() is not None:
                return
            os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(wait)
            except subprocess.TimeoutExpired:
                continue


def selection(group: Group) -> list[str]:
    if group.paths:
        return list(group.paths)
    claimed = [p for g in GROUPS for p in g.paths]
    return ["tests", *(f"--ignore={p}" for p in claimed)]


def check_partition() -> None:
    """Every path of a group exists, and no path is in two groups (its tests would run twice).

    A file inside another group's directory (tests/browser/test_desk_e2e.py) is fine: the group of
    the directory ignores it (deselect_overlaps).
    """
    owners: dict[str, str] = {}
    for g in GROUPS:
        for p in g.paths:
            if not (ROOT / p).exists():
                raise SystemExit(f"group {g.name}: {p} does not exist")
            if p in owners:
                raise SystemExit(f"{p} is in both {owners[p]} and {g.name}")
            owners[p] = g.name


def deselect_overlaps(group: Group) -> list[str]:
    """--ignore the paths of other groups that lie inside this group's directories."""
    mine = set(group.paths)
    ignores = []
    for g in GROUPS:
        for p in g.paths if g is not group else ():
            if p not in mine and any(p.startswith(d + "/") for d in mine):
                ignores.append(f"--ignore={p}")
    return ignores


def collected(python: str, args: list[str]) -> set[str]:
    proc = subprocess.run(
        # A module that fails to import is missing from both sides alike: compare the rest.
        [python, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
        + ["--continue-on-collection-errors", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if proc.returncode not in (0, 1, NO_TESTS):
        sys.stdout.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"collection failed: pytest {' '.join(args)}")
    return {line for line in proc.stdout.splitlines() if "::" in line}


def verify_cover(python: str, pytest_args: list[str]) -> int:
    """The groups together collect exactly what `pytest` collects, each test once."""
    everything = collected(python, ["tests", *pytest_args])
    union: dict[str, str] = {}
    twice = []
    for g in GROUPS:
        ids = collected(python, [*selection(g), *deselect_overlaps(g), *pytest_args])
        print(f"{g.name:8} {len(ids):5} tests")
        for i in ids:
            if i in union:
                twice.append(f"{i} ({union[i]} and {g.name})")
            union[i] = g.name
    missing = sorted(everything - union.keys())
    print(f"{'pytest':8} {len(everything):5} tests; in no group: {len(missing)}; in two groups: {len(twice)}")
    for line in [*missing[:20], *twice[:20]]:
        print("  ", line)
    return 1 if missing or twice or union.keys() - everything else 0


def slowest(junits: list[tuple[str, Path]], count: int = 15) -> list[tuple[float, str, str]]:
    """(seconds, group, test id) of the slowest tests over every group's JUnit XML (setup+call+teardown)."""
    rows = []
    for name, path in junits:
        if not path.exists():
            continue
        for case in ET.parse(path).getroot().iter("testcase"):  # noqa: S314 (written by our pytest)
            test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
            rows.append((float(case.get("time") or 0), name, test_id))
    return sorted(rows, reverse=True)[:count]


def summary_of(log: Path) -> str:
    """The part of a group's output worth showing: from pytest's short summary (or the last lines)."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    for i, line in enumerate(lines):
        if "short test summary info" in line:
            return "\n".join(lines[i:])
    return "\n".join(lines[-60:])


def result_line(log: Path) -> str:
    """pytest's last line ("12 passed, 1 skipped in 40.1s"), without its ===== frame."""
    lines = [ln.strip("= ") for ln in log.read_text(encoding="utf-8", errors="replace").splitlines()]
    return next((ln for ln in reversed(lines) if " in " in ln and ln[:1].isdigit()), "")


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # a cancelled CI job: stop the groups (own sessions) and their servers


def merged_code(codes: list[int]) -> int:
    failing = [c for c in codes if c not in (0, NO_TESTS)]
    if failing:
        return failing[0]
    return NO_TESTS if codes and all(c == NO_TESTS for c in codes) else 0


def ensure_model(python: str) -> None:
    """Train (or find cached) the model once, before groups that would each try to train it."""
    subprocess.run([python, "-m", "devstack.model"], cwd=ROOT, check=True)


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    cut = argv.index("--") if "--" in argv else len(argv)
    own, pytest_args = argv[:cut], argv[cut + 1 :]
    names = [g.name for g in GROUPS]
    p = argparse.ArgumentParser(prog="python -m scripts.test_groups", description=DESCRIPTION)
    # 3 on 2 cores: most of the browser and server groups' time is waiting on the servers they start.
    jobs = min(len(GROUPS), max(3, os.cpu_count() or 2))
    p.add_argument("--jobs", type=int, default=jobs, help=f"groups running at once (default {jobs})")
    p.add_argument("--only", default="", help=f"comma-separated groups to run, of {', '.join(names)}")
    p.add_argument("--out", type=Path, help="logs, JUnit XML and tmp dirs (default: a new temp dir)")
    p.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="GROUP=EXE",
        help="interpreter for one group (default: this one); repeatable",
    )
    p.add_argument("--no-model", action="store_true", help="do not ensure the trained model first")
    p.add_argument("--list", action="store_true", help="print the groups and their pytest commands")
    p.add_argument("--check", action="store_true", help="verify the groups cover the suite exactly")
    args = p.parse_args(own)
    only = [n for n in args.only.split(",") if n]
    if unknown := set(only) - set(names):
        p.error(f"unknown group(s) {', '.join(sorted(unknown))}; groups are {', '.join(names)}")
    args.only = only or names
    pythons = {}
    for item in args.python:
        name, sep, exe = item.partition("=")
        if not sep or name not in names or not exe:
            p.error(f"--python takes GROUP=EXE with GROUP one of {', '.join(names)}, got {item!r}")
        pythons[name] = exe
    args.pythons = pythons
    if args.jobs < 1:
        p.error("--jobs must be at least 1")
    return args, pytest_args


def main(argv: list[str]) -> int:
    check_partition()
    args, pytest_args = parse_args(argv)
    if args.check:
        return verify_cover(sys.executable, pytest_args)
    if any(not a.startswith("-") and (ROOT / a.split("::")[0]).exists() for a in pytest_args):
        # The caller chose the tests (make test PYTEST_ARGS=tests/service): one plain pytest.
        cmd = [sys.executable, "-m", "pytest", *pytest_args]  # --durations=15: pyproject.toml
        return subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}).returncode
    out = args.out or Path(tempfile.mkdtemp(prefix="test-groups-"))
    out.mkdir(parents=True, exist_ok=True)
    runs = [
        Run(g, i, out, args.pythons.get(g.name, sys.executable), [*deselect_overlaps(g), *pytest_args])
        for i, g in enumerate(GROUPS)
        if g.name in args.only
    ]
    runs.sort(key=lambda r: START.index(r.group.name) if r.group.name in START else len(START))
    if args.list:
        for r in runs:
            print(f"{r.group.name}: {r.group.why}\n  TEST_PORT_RANGE={r.env()['TEST_PORT_RANGE']}")
            print(f"  {' '.join(r.command([]))}")
        return 0
    if not args.no_model:
        ensure_model(sys.executable)
    print(f"test groups: {', '.join(r.group.name for r in runs)}; {args.jobs} at once; output in {out}")
    began = time.monotonic()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    waiting, running = list(runs), list[Run]()
    try:
        while waiting or running:
            while waiting and len(running) < args.jobs:
                run = waiting.pop(0)
                run.start()
                running.append(run)
                print(f"[{time.monotonic() - began:6.0f} s] {run.group.name} started ({run.log})", flush=True)
            for run in [r for r in running if r.poll()]:
                running.remove(run)
                took = run.ended - run.started
                verdict = "passed" if run.code in (0, NO_TESTS) else f"FAILED (exit {run.code})"
                print(
                    f"[{time.monotonic() - began:6.0f} s] {run.group.name} {verdict} in {took:.0f} s"
                    f" ({result_line(run.log)})"
                )
                if run.code not in (0, NO_TESTS):
                    print(summary_of(run.log), flush=True)
            time.sleep(0.5)
    except KeyboardInterrupt:
        for run in runs:
            run.stop()
        print(f"interrupted: every group stopped; logs in {out}")
        return 130
    print(f"\nslowest 15 tests (setup + call + teardown), all groups; wall {time.monotonic() - began:.0f} s:")
    for seconds, name, test_id in slowest([(r.group.name, r.junit) for r in runs]):
        print(f"{seconds:8.2f} s  [{name}] {test_id}")
    for r in runs:
        cpu = f"{r.cpu_s:6.0f} s CPU" if r.cpu_s is not None else " " * 10
        print(f"{r.group.name:8} exit {r.code}  {r.ended - r.started:6.0f} s  {cpu}  {r.log}")
    spent = [r.cpu_s for r in runs if r.cpu_s is not None]
    print(f"CPU of all groups: {sum(spent):.0f} s on {os.cpu_count()} cores")
    return merged_code([r.code if r.code is not None else 1 for r in runs])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
