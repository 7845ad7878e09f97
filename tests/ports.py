"""Ports for the servers a test session starts, from a private range when TEST_PORT_RANGE is set.

`devstack.processes.free_port` asks the kernel for an ephemeral port and closes it again: two pytest
processes running side by side (scripts/test_groups.py) could be handed the same port before either
server listens on it. The runner gives each process its own range outside the kernel's ephemeral
range, and within a process every port is handed out once.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable

ENV = "TEST_PORT_RANGE"


class PortRangeError(ValueError):
    """TEST_PORT_RANGE is not `low-high` with 1024 < low < high <= 65535."""


def parse(spec: str) -> tuple[int, int]:
    low_text, sep, high_text = spec.partition("-")
    try:
        low, high = int(low_text), int(high_text)
    except ValueError:
        low = high = 0
    if not sep or not 1024 < low < high <= 65535:
        raise PortRangeError(f"{ENV} must look like 20000-22999 (1024 < low < high <= 65535), got {spec!r}")
    return low, high


def range_allocator(low: int, high: int) -> Callable[[], int]:
    """A `free_port` that returns each port of [low, high] at most once, skipping ports in use."""
    candidates = itertools.count(low)

    def free_port() -> int:
        for port in candidates:
            if port > high:
                break
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue  # another program (or a closing socket) holds it
            return port
        raise RuntimeError(f"{ENV} {low}-{high}: every port of the range has been handed out")

    return free_port
