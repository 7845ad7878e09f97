"""Base class of the bot's form validators."""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict


class CustomerFormValidation(FormValidationAction, ABC):
    """Validates only what the customer gave.

    An action that starts a form first clears its slots (SlotSet(None)); rasa_sdk hands those trailing
    slot events to the validators as if they were answers, which made the bot complain about choices
    the customer never made ("Em chưa rõ…") right when the form opened. Cleared slots are not answers.
    """

    @abstractmethod
    def name(self) -> str:
        """Abstract, so that rasa_sdk does not register this base class as an action."""

    async def get_validation_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events = list(tracker.events)
        tail = 0
        for event in reversed(events):
            if event.get("event") != "slot":
                break
            tail += 1
        candidates = events[len(events) - tail :]
        answers = [e for e in candidates if e.get("value") is not None]
        if len(answers) == len(candidates):
            return await super().get_validation_events(dispatcher, tracker, domain)
        only_answers = copy.copy(tracker)
        only_answers.events = events[: len(events) - tail] + answers
        return await super().get_validation_events(dispatcher, only_answers, domain)
