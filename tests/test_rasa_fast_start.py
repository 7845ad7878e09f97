"""deploy/rasa_fast_start.py: the model loaded without Rasa's one-example training step parses
exactly as the model loaded Rasa's way (bench/profile_startup.py --compare, in its own process:
it replaces RasaModel.load and clears Keras' session, which must not leak into other tests)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from devstack import model, processes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_the_fast_load_parses_held_out_messages_as_rasas_own_load() -> None:
    model_file = model.ensure_model()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.profile_startup",
            "--compare",
            "--messages",
            "200",
            "--model",
            str(model_file),
        ],
        cwd=processes.ROOT,
        env={**os.environ, "PYTHONPATH": str(processes.ROOT), "RASA_TELEMETRY_ENABLED": "false"},
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert "200 messages parsed twice: 0 differ" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 0
