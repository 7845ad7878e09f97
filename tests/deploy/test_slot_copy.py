"""deploy/rasa_speedups.py gives Rasa's Slot a `__copy__` that builds what `copy.copy` builds through
`__reduce_ex__` (a new instance, same class, same `__dict__`): for every slot of the domain and every
slot class, the copy must be the one `copy.copy` makes without it, and so must every tracker."""

from __future__ import annotations

import abc
import copy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, BotUttered, SlotSet, UserUttered
from rasa.shared.core.slots import AnySlot, BooleanSlot, CategoricalSlot, FloatSlot, ListSlot, Slot, TextSlot
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity

from deploy import rasa_speedups

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    assert rasa_speedups.install()
    assert "__copy__" in vars(Slot)


@contextmanager
def stock_copy() -> Iterator[None]:
    """Rasa's Slot as shipped, without the `__copy__` the speed-up adds."""
    fast = vars(Slot)["__copy__"]
    del Slot.__copy__  # type: ignore[attr-defined]
    try:
        yield
    finally:
        Slot.__copy__ = fast  # type: ignore[attr-defined]


def same_copy(slot: Slot) -> None:
    fast = copy.copy(slot)
    with stock_copy():
        stock = copy.copy(slot)
    assert type(fast) is type(stock) is type(slot)
    assert fast is not slot and fast.__dict__ == stock.__dict__ == slot.__dict__
    # Shallow, as copy.copy: the same value objects, a dict of its own.
    for name, value in slot.__dict__.items():
        assert fast.__dict__[name] is value is stock.__dict__[name], name
    assert fast.__dict__ is not slot.__dict__


def example_slots() -> list[Slot]:
    domain = Domain.load(str(ROOT / "domain.yml"))
    slots: list[Slot] = [copy.copy(s) for s in domain.slots]
    slots += [
        TextSlot("t", mappings=[{}], initial_value="x"),
        BooleanSlot("b", mappings=[{}], initial_value=True),
        FloatSlot("f", mappings=[{}], min_value=0, max_value=2, initial_value=1.5),
        ListSlot("l", mappings=[{}], initial_value=["a"]),
        CategoricalSlot("c", mappings=[{}], values=["a", "b"]),
        AnySlot("a", mappings=[{}], initial_value={"k": [1]}),
    ]
    for slot in slots[::2]:  # set, as a conversation does (value and "has been set" flag)
        slot.value = {"sms": "090****456"} if isinstance(slot, AnySlot) else slot.initial_value
    return slots


def test_every_domain_slot_and_slot_class_copies_as_copy_copy_does() -> None:
    slots = example_slots()
    assert {type(s) for s in slots} >= {TextSlot, BooleanSlot, FloatSlot, ListSlot, CategoricalSlot, AnySlot}
    for slot in slots:
        same_copy(slot)
    copied = copy.copy(slots[0])
    copied.value = "changed"
    assert slots[0].value != "changed"  # the copy's value is its own


class _Reduced(TextSlot):
    def __reduce_ex__(self, protocol: Any) -> Any:
        return (_Reduced, ("reduced", [{}]), {"via": "reduce"})


class _Slotted(TextSlot):
    __slots__ = ("extra",)


class _Stateful(TextSlot):
    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "via": "getstate"}


def test_a_slot_class_that_customises_copying_is_copied_by_copy_copys_own_path() -> None:
    reduced = _Reduced("r", mappings=[{}])
    assert copy.copy(reduced).via == "reduce" and copy.copy(reduced).name == "reduced"  # type: ignore[attr-defined]
    slotted = _Slotted("s", mappings=[{}])
    slotted.extra = 7
    assert copy.copy(slotted).extra == 7
    assert copy.copy(_Stateful("g", mappings=[{}])).via == "getstate"  # type: ignore[attr-defined]
    for cls in (_Reduced, _Slotted, _Stateful):
        assert not rasa_speedups.copies_as_plain_object(cls)
    for cls in (TextSlot, AnySlot, CategoricalSlot):
        assert rasa_speedups.copies_as_plain_object(cls)  # abc.ABC's empty __slots__ names nothing

    class WithSlotsNamed(abc.ABC):  # noqa: B024 - a base that names slots, as ABC subclasses may
        __slots__ = ("a",)

    class WithNew:
        def __new__(cls) -> WithNew:
            return super().__new__(cls)

    assert not rasa_speedups.copies_as_plain_object(WithSlotsNamed)
    assert not rasa_speedups.copies_as_plain_object(WithNew)


def conversation(domain: Domain) -> DialogueStateTracker:
    tracker = DialogueStateTracker("slot-copy", domain.slots)
    for turn in range(3):
        tracker.update(ActionExecuted("action_listen"))
        tracker.update(UserUttered(f"xin chào {turn}", {"name": "greet", "confidence": 1.0}, []))
        tracker.update(SlotSet("request_code", "PC05TK0000123"))
        tracker.update(ActionExecuted("utter_greet"))
        tracker.update(BotUttered("Xin chào", {}))
        tracker.update(ActiveLoop("verification_form"))
        tracker.update(SlotSet("requested_slot", "verify_channel"))
        tracker.update(SlotSet("verify_sms", "090****456"))
        tracker.update(ActionExecuted("verification_form"))
    return tracker


def test_trackers_copied_and_replayed_are_the_same_as_with_rasas_slot_copy() -> None:
    domain = Domain.load(str(ROOT / "domain.yml"))
    tracker = conversation(domain)

    def views() -> list[Any]:
        out = []
        for made in (
            tracker.init_copy(),
            tracker.copy(),
            tracker.travel_back_in_time(tracker.events[5].timestamp),
        ):
            state = made.current_state(EventVerbosity.ALL)
            slots = {name: (type(s), s.__dict__) for name, s in made.slots.items()}
            out.append((state, slots, made.active_loop, made.latest_action, made.followup_action))
        out.append([states for states in tracker.past_states(domain)])
        return out

    fast = views()
    with stock_copy():
        stock = views()
    assert fast == stock
    assert fast[1][0]["slots"]["verify_sms"] == "090****456"
    assert fast[0][0]["slots"]["verify_sms"] is None  # init_copy: initial values
