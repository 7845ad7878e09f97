"""`rasa data validate` is clean apart from warnings Rasa cannot help raising.

Rasa warns about every response not named in a story or rule, but this bot's custom actions and
forms utter most responses, and the agent desk and connectors push a few themselves. Each such
warning must name a response that something really uses; any other warning fails the test.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bot.actions.general import LABEL_PREFIX
from notifier.messages import PREFIX as NOTICE_PREFIX

ROOT = Path(__file__).resolve().parents[2]


def domain_intents() -> set[str]:
    import yaml

    return set(yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))["intents"])


# Pushed by other parts (agent desk, connectors) or by Rasa itself (core fallback).
EXTERNAL = {
    "utter_handoff_agent_joined",
    "utter_handoff_returned",
    "utter_handoff_timeout",
    "utter_csat_ask",
    "utter_csat_thanks",
    "utter_csat_comment_thanks",
    "utter_unsupported_content",
    "utter_bot_failure",
    "utter_default",
}
KNOWN = re.compile(
    r"duplicated intents have been found across multiple domain files: faq$"
    # Sent only by the connectors as a payload with metadata (common/shared_contact.py): examples
    # would teach the NLU to take typed text for a shared contact.
    r"|The intent 'share_contact' is listed in the domain file, but is not found in the NLU training data\.$"
    # The satisfaction survey's buttons (agent_desk/csat.py): payloads only, answered by the desk,
    # neither examples (typed text is never a score) nor a rule (the core fallback stays silent).
    r"|The intent 'csat' is listed in the domain file, but is not found in the NLU training data\.$"
    r"|The intent 'csat' is not used in any story or rule\.$"
)


def test_rasa_data_validate() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rasa", "data", "validate", "--domain", "domain.yml", "--data", "bot/data",
         "--config", "config.yml"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    warnings = re.findall(r"UserWarning: (.+)", output)
    assert proc.returncode == 0, output[-3000:]
    assert "No story structure conflicts found" in output, output[-3000:]
    assert " ERROR " not in output, output[-3000:]
    actions_source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "bot" / "actions").glob("*.py"))
    unexplained = []
    for warning in warnings:
        unused = re.match(r"The utterance '([^']+)' is not used in any story or rule\.", warning)
        if unused:
            name = unused.group(1)
            # Button titles of the two-stage fallback, read by prefix (bot/actions/general.py).
            labels = name.startswith(LABEL_PREFIX) and name[len(LABEL_PREFIX) :] in domain_intents()
            # Notices: the notifier renders utter_notice_<kind> itself (notifier/messages.py).
            notice = name.startswith(NOTICE_PREFIX)
            if (
                name in EXTERNAL
                or name.startswith("utter_ask_")
                or labels
                or notice
                or f'"{name}"' in actions_source
            ):
                continue
        elif KNOWN.search(warning.strip()):
            continue
        unexplained.append(warning)
    assert unexplained == []
