"""How Rasa is started here: `python -m deploy.rasa_main run ...` (the arguments of `rasa`).

Before handing over to Rasa's own command line it
1. compares the installed Rasa with the `rasa==` pin of requirements.lock, and every function our
   patches replace or rely on with the source they were written for (deploy/source_pins.py);
2. installs the patches (deploy/rasa_patches.py), whatever tracker store endpoints.yml names.

A difference means the image was not built from the lock file, or Rasa was changed by hand. With
APP_ENV=production Rasa then does not start (the message says what differs); in development and
test it starts with a warning, without the patches whose functions changed (they would be applied
blind), so a Rasa upgrade can be tried locally while tests/deploy/test_rasa_patches.py says which
patches to re-read. Sanic's worker processes are forked from this one, so they inherit the patches.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from deploy import rasa_patches
from deploy.rasa_patches import Patch

LOCK_FILE = Path(__file__).resolve().parents[1] / "requirements.lock"
_PIN = re.compile(r"^rasa==([^\s;#\\]+)", re.MULTILINE)


def locked_version(lock_file: Path = LOCK_FILE) -> str | None:
    """The version requirements.lock pins for Rasa, or None (no file, no pin)."""
    try:
        found = _PIN.search(lock_file.read_text(encoding="utf-8"))
    except OSError:
        return None
    return found.group(1) if found else None


def patches() -> tuple[Patch, ...]:
    """Every patch installed at start-up, in order (register a new patch set here)."""
    from deploy import rasa_fast_start, rasa_finetune, rasa_speedups, tracker_copies

    return (*rasa_speedups.PATCHES, *tracker_copies.PATCHES, *rasa_fast_start.PATCHES, *rasa_finetune.PATCHES)


def start_problems(installed: str, locked: str | None) -> list[str]:
    """What differs from what the patches were written and tested for (empty: nothing)."""
    from deploy import lock_tickets, rest_guard

    problems = []
    if locked is None:
        problems.append(f"{LOCK_FILE.name} pins no rasa== version (looked in {LOCK_FILE})")
    elif installed != locked:
        problems.append(f"Rasa {installed} is installed, {LOCK_FILE.name} pins rasa=={locked}")
    for patch in patches():
        problems += patch.drift()
    # Not patches, but overrides of Rasa methods written for these functions.
    overridden = (*rest_guard.PINS, *lock_tickets.PINS)
    problems += [problem for pin in overridden if (problem := pin.drift()) is not None]
    return problems


# Rasa's own REST-like channels take any sender and any metadata: only GuardedRestInput may serve REST.
UNGUARDED_CHANNELS = ("rest", "callback", "socketio", "rasa.core.channels.rest.RestInput")


def unguarded_channels(argv: Sequence[str]) -> list[str]:
    """Channels of the credentials file Rasa will read (`--credentials`, default credentials.yml)
    that bypass the REST guard (deploy/rest_guard.py)."""
    import yaml

    path = Path("credentials.yml")
    for i, arg in enumerate(argv):
        if arg == "--credentials" and i + 1 < len(argv):
            path = Path(argv[i + 1])
        elif arg.startswith("--credentials="):
            path = Path(arg.split("=", 1)[1])
    try:
        names = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return []  # Rasa reports a missing or broken file itself
    return [name for name in names if name in UNGUARDED_CHANNELS] if isinstance(names, dict) else []


def prepare(env: Mapping[str, str], argv: Sequence[str] = ()) -> None:
    """Check, then install the patches; SystemExit with the reasons when Rasa must not start."""
    import rasa

    from common.production import AppEnvError, is_production

    try:
        production = is_production(env)
    except AppEnvError as e:
        raise SystemExit(f"Rasa not started: {e}") from None
    open_channels = unguarded_channels(argv)
    if production and open_channels:
        raise SystemExit(
            f"Rasa not started (APP_ENV=production): {', '.join(open_channels)} in the credentials file "
            "would take messages without the REST guard; use deploy.rest_guard.GuardedRestInput."
        )
    problems = start_problems(rasa.__version__, locked_version())
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        if production:
            raise SystemExit(
                "Rasa not started (APP_ENV=production): it is not the Rasa the patches were written for.\n"
                f"{listed}\nBuild the image from requirements.lock (docs/deploy.md)."
            )
        print(
            f"WARNING: not the Rasa the patches were written for:\n{listed}\nRasa starts all the same, "
            "without the patches whose functions changed (APP_ENV=production would refuse to start).",
            file=sys.stderr,
        )
    refused = rasa_patches.install(patches())
    installed = [p.name for p in patches() if p.name in rasa_patches.applied()]
    # One line in Rasa's log that says the patches are there (the checks passed or were warned about).
    print(
        f"deploy.rasa_main: Rasa {rasa.__version__}, {len(installed)} patches installed, "
        f"{len(refused)} refused",
        file=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    prepare(os.environ, args)
    sys.argv = ["rasa", *args]
    from rasa.__main__ import main as rasa_cli

    rasa_cli()


if __name__ == "__main__":
    main()
