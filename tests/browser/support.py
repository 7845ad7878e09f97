"""What every browser test shares: Debian's chromium under playwright, the desk's login form, and
where screenshots go (docs/img/ with UPDATE_SCREENSHOTS=1, else a temporary directory)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devstack import processes

PASSWORD = "mat-khau-rat-dai-123"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def screenshots_dir() -> Path:
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        target = processes.ROOT / "docs" / "img"
    else:
        target = Path(tempfile.mkdtemp(prefix="desk-shots-"))
    target.mkdir(parents=True, exist_ok=True)
    return target


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def login(page: Any, base: str, user: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def add_desk_accounts(env: dict[str, str], *accounts: tuple[str, str, str]) -> None:
    """Create (username, role, display name) accounts with `python -m agent_desk.users`, as an
    operator would (`make desk-user`), all with PASSWORD."""
    for user, role, name in accounts:
        done = subprocess.run(
            [sys.executable, "-m", "agent_desk.users", "add", user, "--role", role, "--display-name", name],
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            env=env,
            cwd=processes.ROOT,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr


def wait_until_true(page: Any, expression: str, timeout: float = 30.0) -> None:
    """Poll a JavaScript expression or function from Python until it is truthy.

    Not `page.wait_for_function`: when its first try is false it polls inside the page with eval,
    which the desk's Content-Security-Policy (script-src 'self') refuses ("EvalError ... unsafe-eval");
    `page.evaluate` runs through the DevTools protocol, which the CSP does not govern."""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout:.0f} s: {expression}")
        time.sleep(0.1)
