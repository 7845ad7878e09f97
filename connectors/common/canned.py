"""Connector-level answers (e.g. to a sticker) taken from the running model's domain.yml.

Customer-facing wording lives in domain.yml. When a customer sends something the bot cannot
read, the connector answers with the response named ``UNSUPPORTED_RESPONSE`` from the loaded
model's domain; if the model has no such response, the turn goes to Rasa as ``/out_of_scope``
so the customer still gets the bot's usual "not understood" answer.
"""

from __future__ import annotations

import random
from typing import Any

UNSUPPORTED_RESPONSE = "utter_unsupported_content"
FALLBACK_INTENT_TEXT = "/out_of_scope"


def domain_response_text(app: Any, name: str, channel: str) -> str | None:
    """A random text variation of response ``name`` for ``channel`` from the agent's domain."""
    agent = getattr(getattr(app, "ctx", None), "agent", None)
    domain = getattr(agent, "domain", None)
    variants = getattr(domain, "responses", {}).get(name) or []
    texts = [
        v["text"]
        for v in variants
        if isinstance(v, dict) and v.get("text") and v.get("channel") in (None, channel)
    ]
    return random.choice(texts) if texts else None
