"""The parallel test runner (scripts/test_groups.py) and the per-process port ranges (tests/ports.py)."""

from __future__ import annotations

import itertools
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts import test_groups as runner
from tests import ports


def test_port_range_is_parsed_and_checked() -> None:
    assert ports.parse("20000-22499") == (20000, 22499)
    for bad in ("", "20000", "22499-20000", "80-2000", "20000-70000", "a-b", "20000-20000"):
        with pytest.raises(ports.PortRangeError, match="TEST_PORT_RANGE"):
            ports.parse(bad)


def test_each_port_of_the_range_is_handed_out_once_and_busy_ones_are_skipped() -> None:
    handed = []
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))  # a port surely in use while the allocator runs
        busy.listen()
        taken = busy.getsockname()[1]
        low, high = taken - 1, taken + 2
        free_port = ports.range_allocator(low, high)
        with pytest.raises(RuntimeError, match="every port"):
            for _ in range(5):
                handed.append(free_port())
    # Other programs of the machine may hold a port of the range too: those are skipped as well.
    assert handed and handed == sorted(set(handed))
    assert taken not in handed and all(low <= p <= high for p in handed)


def test_group_ranges_do_not_overlap_and_stay_below_the_ephemeral_range() -> None:
    runs = [runner.Run(g, i, Path("/nonexistent"), "python", []) for i, g in enumerate(runner.GROUPS)]
    ranges = [ports.parse(r.env()["TEST_PORT_RANGE"]) for r in runs]
    for (_, high), (next_low, _) in itertools.pairwise(ranges):
        assert high < next_low
    assert ranges[-1][1] < 32768  # Linux's ephemeral ports (bind to port 0) start there


def test_the_last_group_runs_every_path_the_others_do_not() -> None:
    runner.check_partition()
    rest = runner.GROUPS[-1]
    claimed = {p for g in runner.GROUPS[:-1] for p in g.paths}
    args = runner.selection(rest)
    assert args[0] == "tests"
    assert {a.removeprefix("--ignore=") for a in args[1:]} == claimed


def test_a_file_claimed_inside_another_groups_directory_runs_only_in_its_own_group() -> None:
    servers = next(g for g in runner.GROUPS if "tests/browser" in g.paths)
    assert "--ignore=tests/browser/test_desk_e2e.py" in runner.deselect_overlaps(servers)
    rasa = next(g for g in runner.GROUPS if "tests/browser/test_desk_e2e.py" in g.paths)
    assert runner.deselect_overlaps(rasa) == []


def test_exit_codes_merge() -> None:
    assert runner.merged_code([0, 0, 0]) == 0
    assert runner.merged_code([0, 5, 0]) == 0  # a group whose tests were all deselected
    assert runner.merged_code([5, 5]) == 5
    assert runner.merged_code([0, 1, 2]) == 1
    assert runner.merged_code([0, 2, 1]) == 2


def test_the_slowest_tests_are_merged_from_every_group(tmp_path: Path) -> None:
    def junit(name: str, cases: dict[str, float]) -> Path:
        body = "".join(f'<testcase classname="tests.m" name="{n}" time="{t}"/>' for n, t in cases.items())
        path = tmp_path / f"{name}.xml"
        path.write_text(f'<testsuites><testsuite name="pytest">{body}</testsuite></testsuites>')
        return path

    a = junit("a", {f"a{i}": float(i) for i in range(10)})
    b = junit("b", {f"b{i}": i + 0.5 for i in range(10)})
    top = runner.slowest([("a", a), ("b", b), ("c", tmp_path / "missing.xml")], count=3)
    assert top == [(9.5, "b", "tests.m::b9"), (9.0, "a", "tests.m::a9"), (8.5, "b", "tests.m::b8")]


def test_arguments_after_the_double_dash_go_to_pytest() -> None:
    args, pytest_args = runner.parse_args(["--jobs", "3", "--only", "rest", "--", "-m", "not slow", "-x"])
    assert (args.jobs, args.only, pytest_args) == (3, ["rest"], ["-m", "not slow", "-x"])
    with pytest.raises(SystemExit):
        runner.parse_args(["--only", "nosuchgroup"])
    with pytest.raises(SystemExit):
        runner.parse_args(["--python", "rest"])  # GROUP=EXE


def test_a_groups_result_line_is_pytests_last_summary(tmp_path: Path) -> None:
    log = tmp_path / "g.log"
    log.write_text("collected 3 items\n...\n===== 2 passed, 1 skipped in 4.20s =====\n")
    assert runner.result_line(log) == "2 passed, 1 skipped in 4.20s"
    log.write_text("ImportError while loading conftest\n")
    assert runner.result_line(log) == ""


def test_every_module_on_the_sessions_rasa_runs_in_the_rasa_group_only() -> None:
    users = [
        p.relative_to(runner.ROOT).as_posix()
        for p in (runner.ROOT / "tests").rglob("test_*.py")
        if runner.SHARED_RASA.search(p.read_text(encoding="utf-8"))
    ]
    assert users  # conversations, desk handoff, closed doors, ...
    rasa, *others = runner.GROUPS

    def inside(path: str, paths: tuple[str, ...]) -> bool:
        return any(path == p or path.startswith(p + "/") for p in paths)

    for path in users:
        assert inside(path, rasa.paths), path
        for g in others:
            ignored = {a.removeprefix("--ignore=") for a in runner.selection(g) + runner.deselect_overlaps(g)}
            assert not inside(path, g.paths) or path in ignored, (path, g.name)
            if not g.paths:
                assert inside(path, tuple(ignored)), (path, g.name)


def test_a_groups_cpu_counts_the_processes_it_waited_for(tmp_path: Path) -> None:
    """The CPU printed per group includes its servers and subprocesses (here: a grandchild that
    burns about 0.4 s of CPU), and the group's exit code is kept."""
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass"
    parent = f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {burn!r}])\nsys.exit(3)"
    run = runner.Run(runner.GROUPS[-1], 0, tmp_path, sys.executable, [])
    run.popen = subprocess.Popen([sys.executable, "-c", parent])
    deadline = time.monotonic() + 60
    while not run.poll():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert run.code == 3 and run.popen.returncode == 3
    assert run.cpu_s is not None and run.cpu_s >= 0.4
