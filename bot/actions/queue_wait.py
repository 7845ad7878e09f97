"""A customer waiting for a person asks how long it will take: their place and the expected wait.

The desk knows the queue (agent_desk/queue_wait.py); the bot asks it through bot/actions/desk_api.py.
The `handoff_requested` slot is the bot's own view: when it says "waiting" and the desk has not seen
the request yet (its events arrive a moment later) or cannot be reached, the customer hears that
their place is kept, never that they are not in the queue.
"""

from __future__ import annotations

import math

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.desk_api import DeskUnavailable, QueuePlace, get_desk_api


async def tell_queue_place(dispatcher: CollectingDispatcher, tracker: Tracker) -> None:
    """Says where the customer stands; `utter_handoff_still_waiting` when the desk cannot tell."""
    waiting = bool(tracker.get_slot("handoff_requested"))
    try:
        place: QueuePlace | None = await get_desk_api().queue_place(tracker.sender_id)
    except DeskUnavailable:
        place = None
    if place is not None and place["status"] == "active":
        dispatcher.utter_message(response="utter_queue_with_agent")
        return
    if place is None or place["status"] == "none" or place["position"] is None:
        # The desk cannot tell (down, or not yet seen a request queued a moment ago): the bot's own view.
        dispatcher.utter_message(
            response="utter_handoff_still_waiting" if waiting else "utter_queue_not_waiting"
        )
        return
    position, total = place["position"], max(place["waiting_total"], place["position"])
    expected = place["expected_wait_s"]
    if place["agents_available"] <= 0:
        dispatcher.utter_message(
            response="utter_queue_place_no_agent", position=position, waiting_total=total
        )
    elif expected is None:
        dispatcher.utter_message(
            response="utter_queue_place_no_estimate", position=position, waiting_total=total
        )
    else:
        minutes = max(1, math.ceil(expected / 60))
        dispatcher.utter_message(
            response="utter_queue_place", position=position, waiting_total=total, minutes=minutes
        )


class ActionQueueWait(Action):
    """ "tôi đợi bao lâu nữa?": the place in the queue and the expected wait (or how to get in it)."""

    def name(self) -> str:
        return "action_queue_wait"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        await tell_queue_place(dispatcher, tracker)
        return []
