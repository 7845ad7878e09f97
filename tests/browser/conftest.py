"""Browser fixtures shared by the desk's browser tests (helpers in tests/browser/support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.support import chromium, screenshots_dir


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def shots() -> Path:
    return screenshots_dir()
