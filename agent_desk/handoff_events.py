"""The Rasa events the desk appends to a conversation: agent lines, take-over and hand-back."""

from __future__ import annotations

from typing import Any

from agent_desk.accounts import Agent
from agent_desk.desk_texts import TEXTS
from agent_desk.handoffs import DeskError
from agent_desk.responses import DomainResponses, MissingResponse


def bot_event(text: str, **metadata: str) -> dict[str, Any]:
    return {"event": "bot", "text": text, "metadata": metadata, "data": {}}


def handback_events(responses: DomainResponses, response: str) -> list[dict[str, Any]]:
    """Resume the bot with `response` (raises MissingResponse when the domain lacks it)."""
    events: list[dict[str, Any]] = [
        {"event": "resume"},
        {"event": "action", "name": response},
        bot_event(responses.text(response), utter_action=response),
    ]
    if responses.has_slot("handoff_requested"):
        events.append({"event": "slot", "name": "handoff_requested", "value": False})
    # Leave the tracker listening, as after any bot turn, so the next message is predicted normally.
    events.append({"event": "action", "name": "action_listen"})
    return events


def joined_events(responses: DomainResponses, agent: Agent) -> list[dict[str, Any]]:
    """Pause the bot and tell the customer which agent joined: a claim, a transfer, a takeover."""
    try:
        joined = responses.text("utter_handoff_agent_joined", agent_name=agent.display_name)
    except MissingResponse as exc:
        raise DeskError(TEXTS.get("claim_unavailable", error=exc), 503) from exc
    return [
        {"event": "pause"},
        {"event": "action", "name": "utter_handoff_agent_joined"},
        bot_event(joined, utter_action="utter_handoff_agent_joined", joined_agent=agent.username),
    ]
