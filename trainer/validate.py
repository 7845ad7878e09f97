"""`make validate`: Rasa's own data validation plus the trainer checks, one message per line (file:line)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass

from trainer import checks
from trainer.project import Project
from trainer.settings import ROOT, Settings

RASA_VALIDATE_TIMEOUT_S = 600


@dataclass
class Result:
    issues: list[checks.Issue]
    rasa_ok: bool | None  # None: not run
    rasa_output: str = ""

    @property
    def errors(self) -> list[checks.Issue]:
        return [i for i in self.issues if i.level == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors and self.rasa_ok is not False


def rasa_data_validate(settings: Settings) -> tuple[bool, str]:
    """Run `rasa data validate` on the project (a subprocess: it imports TensorFlow)."""
    cmd = [
        sys.executable, "-m", "rasa", "data", "validate",
        "--domain", str(settings.path(settings.domain)),
        "--data", str(settings.path(settings.data_dir)),
        "--config", str(settings.path(settings.config)),
    ]  # fmt: skip
    # The project's custom components are imported from the real checkout even for a staging copy.
    paths = [str(settings.root), str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    try:
        proc = subprocess.run(
            cmd, cwd=settings.root, env=env, capture_output=True, text=True, timeout=RASA_VALIDATE_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return False, "rasa data validate: quá thời gian"
    output = proc.stdout + proc.stderr
    serious = [line for line in _rasa_lines_worth_showing(output) if _SERIOUS.search(line)]
    return proc.returncode == 0 and not serious, output


def run(settings: Settings, with_rasa: bool = True) -> Result:
    project = Project.load(settings)
    issues = checks.run_all(project)
    if not with_rasa:
        return Result(issues, None)
    # Rasa cannot read broken YAML either; its traceback would only hide our clearer message.
    if any(i.code in ("E-YAML", "E-DOMAIN") for i in issues):
        return Result(issues, None, "")
    ok, output = rasa_data_validate(settings)
    return Result(issues, ok, output)


# Rasa reports these as warnings and exits 0, but the bot would break at run time: treat them as errors.
_SERIOUS = re.compile(
    r"is not a valid|not listed in the domain|is not defined in the domain|story structure conflict|"
    r"not in the domain|contradict",
    re.IGNORECASE,
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_WARNING_PREFIX = re.compile(r"^.*?\.py:\d+: (UserWarning|FutureWarning): ")


def _rasa_lines_worth_showing(output: str) -> list[str]:
    """Rasa's warnings and errors without ANSI colours, file prefixes and Python deprecation noise."""
    keep = []
    for line in output.splitlines():
        line = _ANSI.sub("", line).strip()
        if not line or "DeprecationWarning" in line or "tensorflow" in line.lower():
            continue
        if _WARNING_PREFIX.match(line):
            keep.append("rasa: " + _WARNING_PREFIX.sub("", line))
        elif " ERROR " in line or line.startswith(("ERROR", "YamlValidationException", "InvalidDomain")):
            keep.append("rasa: " + line)
    return keep


def print_result(result: Result, settings: Settings) -> None:
    for issue in result.issues:
        print(issue)
    if result.rasa_ok is not None:
        shown = _rasa_lines_worth_showing(result.rasa_output)
        # Responses sent by custom actions are never in a story: Rasa lists each one; keep only a count.
        unused = [line for line in shown if "is not used in any story or rule" in line]
        shown = [line for line in shown if line not in unused]
        if unused:
            shown.append(f"rasa: {len(unused)} ý định/câu trả lời không xuất hiện trong luật hay câu chuyện "
                         f"(bình thường với câu trả lời do action gửi)")  # fmt: skip
        if shown:
            print("--- rasa data validate ---")
            for line in shown[:200]:
                print(line)
        print(f"rasa data validate: {'đạt' if result.rasa_ok else 'KHÔNG ĐẠT'}")
    n_err = len(result.errors)
    n_warn = len(result.issues) - n_err
    status = "ĐẠT" if result.ok else "KHÔNG ĐẠT"
    print(
        f"Kiểm tra dữ liệu NLU: {status} — {n_err} lỗi, {n_warn} "
        "cảnh báo (docs/trainer-guide.vi.md, mục 'Lỗi')"
    )
