"""Constant per-turn costs of Rasa 3.6 removed (found with bench/profile_rasa.py and py-spy).

1. `Event.resolve_by_type` walks every subclass of Event (`all_subclasses`, recursive) for each
   event it deserialises: ~12 % of a turn's time in the profile of an 80-turn conversation.
   The type-name -> class map never changes once Rasa is loaded, so it is cached.
2. `RemoteAction._validate_action_result` calls `jsonschema.validate`, which re-checks the
   *schema itself* against the JSON-Schema meta-schema on every custom action call (~8 % of a
   turn; RasaHQ/rasa#11717). The validator is built once; the validation is the same. Valid
   results (all of them, from our action server) take a shorter road to the same verdict: each
   event is checked against the one `oneOf` branch its `event` name selects, instead of all 23
   (7 % of the worker's time under load, 2026-12-06); anything that fails it is checked again by
   the full validator, so a bad result raises exactly the error Rasa's check raises.
3. `Domain.is_empty` builds an empty Domain from a dict and compares both as dicts; the processor
   asks it for every message (`_check_for_unseen_features`, ~2 % of a turn). A loaded domain never
   changes, so the answer is kept on the instance.
4. Garbage collection: a turn allocates tens of thousands of short-lived objects (events, states,
   dicts for JSON), so CPython's default threshold (700 allocations) runs the young-generation
   collector hundreds of times per turn, each pass also walking the survivors of the loaded model
   and domain. The young generation is made larger (RASA_GC_THRESHOLD, default 50000; 0 keeps
   Python's default). Reference counting still frees almost everything at once; only cycles wait.
5. With several Sanic workers on one listening socket, a kept-alive connection stays with the
   worker that accepted it, so a client with a connection pool can load one worker and leave the
   other idle (seen: 97 % instead of 150 % CPU and half the throughput, in about one run of three).
   Sanic 21.12 ignores its KEEP_ALIVE setting, so with RASA_REQUESTS_PER_CONNECTION=N (devstack
   sets 20 when there are several workers) each request closes its connection with probability
   1/N: a connection serves N requests on average, and the client's next one goes to whichever
   worker is free. N=1 closes after every request, which costs a TCP connection per message
   (~1 ms of CPU per turn in Rasa and the client together, bench/README.md). Only Rasa sets it.
6. Every message runs the model graph two or three times (NLU, then one policy prediction per
   action), each through `dask.get`, which rebuilds the task graph, orders it and schedules it
   on every call: 6 % of the Rasa worker's time under load (py-spy). The graph never changes
   after loading, so the order of its nodes is computed once per set of targets and the nodes
   are called in that order, with the same inputs and outputs.
7. Each DIET / ResponseSelector prediction calls a `tf.function` with an input signature, and
   TensorFlow matches and casts the ~30 input arrays against that signature on every call before
   running the one concrete function it ever has (8 % of the Rasa worker's time under load). The
   concrete function is taken once and called with the inputs converted to the signature's
   dtypes: 0.6-0.75 ms less CPU per message (4.2 -> 3.6 ms per parse, in-process). TensorFlow 2.12
   only (its private `_call_flat`); any error falls back to TensorFlow's own path for good.
8. The sparse features of the regex and two count-vector featurizers are joined with
   `scipy.sparse.hstack`, whose general block-matrix code builds and checks several matrices per
   join (5 % of the worker's time). Two COO matrices side by side are their entries with the
   second one's columns shifted: 0.35-0.4 ms less CPU per parse, same matrix.
9. `EndpointConfig.request` (every custom action call) opens a new aiohttp session, hence a new
   TCP connection, per call; Rasa and the action server each pay for the connection. Sessions
   now share one connection pool per endpoint and event loop. Pooled connections are dropped
   after 2 s idle, well before the action server's 5 s keep-alive (Sanic's default), so a
   request is not sent on a connection the server is closing.
   The domain a call carries (validate_* form actions and those marked `send_domain`, 56 KB of
   JSON) is one dict for the life of the loaded model (`Domain.as_dict` returns `Domain._data`):
   its JSON is encoded once per domain object and spliced into each request body; the rest of the
   body (tracker, action name) is encoded per call, with ujson (already installed for Sanic):
   about 2x faster than `json.dumps` on a 39 KB tracker, ASCII with backslash-u escapes as
   `json.dumps` writes it (lone surrogates from a user's text included), without the spaces
   (6 % fewer bytes). Encoding the action call's JSON was 5.5 % of the Rasa workers' CPU under
   load (py-spy, 2026-12-06, fifth session). What ujson refuses (objects it does not know, bytes)
   goes to `json.dumps`, which raises Rasa's own error. Same JSON document,
   key order included, except for the validate_* form actions: Rasa sends them the domain by name,
   rasa_sdk's form validation reads only its `slots` and `forms`, and ours nothing else
   (tests/actions/test_registration.py), so they get it without the 48 KB of `responses` (unless
   marked `send_domain: true`).
10. CountVectorsFeaturizer turns each message into count matrices with scikit-learn's
   `transform` (a CSR matrix and a new analyzer per call), then sorts and converts them to COO:
   the matrices are built directly from the fitted vocabulary (`count_matrix`), the same counting
   (3.9 -> 3.2 ms of CPU per parse over the held-out messages, alternating in one process).
11. Combining a message's features deep-copies the first one (its matrix through pickling); a
   shallow copy with its own copy of the matrix is enough, joining never changes a matrix in
   place (3.0 -> 2.9 ms per parse).
12. RulePolicy checks every rule against every turn of the conversation for each prediction, and
   for each check parses the rule's key from JSON (cached), reverses its states into a new list
   and converts its list values to tuples. The parsed, reversed and converted states are kept per
   rule key; the check is otherwise Rasa's, line for line.
13. Every tracker Rasa builds (loading one, `copy()` before each action, a form's temporary tracker,
   one per action of the window for each policy prediction) starts with `copy.copy` of each of the
   domain's 35 slots, and `copy.copy` of a plain object goes through `__reduce_ex__(4)` and
   `copyreg`: 2.3 us per slot, 82 of a tracker's 98 us, and the slot-dict comprehension was 6 %
   of the Rasa workers' CPU under load (py-spy, 2026-12-06, sixth session). `Slot.__copy__` now
   makes the same object directly: a new instance of the same class with the same `__dict__`,
   which is what `copy.copy` builds for a class that does not customise how it is copied (each
   slot class is checked once; one that does is copied by `copy.copy`'s own path).
14. To find the rules that fit the conversation, RulePolicy checks every rule (128 here, for each
   of up to four lookups per prediction) against the last state first, where almost all fail on
   the previous action alone: a rule whose last state names a previous action can only fit a
   conversation whose last action has that name. The rules are indexed once by that name, and the
   first pass checks only the rules of the conversation's last action and those that name none;
   every check is still Rasa's own, and later passes are Rasa's.

`PATCHES` are installed by deploy/rasa_main.py when Rasa starts (`install()` here: the same, for tests
and tools). Each pins the functions it replaces or reproduces (deploy/source_pins.py): on another
version of them it is refused, not applied blind.
"""

from __future__ import annotations

import copyreg
import gc
import json
import logging
import os
import random
from dataclasses import dataclass
from typing import Any

import ujson

from common.env_numbers import env_number
from deploy import rasa_patches
from deploy.rasa_patches import Patch
from deploy.source_pins import pins, replace

logger = logging.getLogger(__name__)


def install() -> bool:
    """Install every speed-up (idempotent); False when one was refused (warned about)."""
    return not rasa_patches.install(PATCHES)


def _cache_event_types() -> None:
    from rasa.shared.core.events import Event

    original = Event.resolve_by_type
    cache: dict[str, Any] = {}

    def resolve_by_type(type_name: str, default: Any = None) -> Any:
        cls = cache.get(type_name)
        if cls is None:
            cls = original(type_name, default)
            if cls is not None and getattr(cls, "type_name", None) == type_name:
                cache[type_name] = cls  # only real matches; defaults and unknown names are not cached
        return cls

    replace(Event, "resolve_by_type", resolve_by_type)


def _event_branches(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]] | None:
    """The action-result schema with its events only required to be an array, and one schema per
    event name: the event schema's common part with the single `oneOf` branch of that name. None
    when the schema is not shaped so (then only the full validator is used)."""
    try:
        events = spec["properties"]["events"]
        event = events["items"]
        branches = event["oneOf"]
        names = [b["properties"]["event"]["const"] for b in branches]
    except (KeyError, TypeError):
        return None
    # `oneOf` means exactly one branch holds; every branch pins a different `event` and the common
    # part requires `event`, so for a known name "exactly one" is "the branch of that name holds".
    if "event" not in event.get("required", ()) or len(set(names)) != len(names):
        return None
    common = {k: v for k, v in event.items() if k != "oneOf"}
    outer = {**spec, "properties": {**spec["properties"], "events": {"type": "array"}}}
    return outer, {name: {"allOf": [common, branch]} for name, branch in zip(names, branches, strict=True)}


def _prebuild_action_validator() -> None:
    from jsonschema import exceptions, validators
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    spec = RemoteAction.action_response_format_spec()
    cls = validators.validator_for(spec)
    cls.check_schema(spec)
    validator = cls(spec)
    shaped = _event_branches(spec)
    outer = cls(shaped[0]) if shaped else None
    by_name = {name: cls(schema) for name, schema in shaped[1].items()} if shaped else {}

    def surely_valid(result: Any) -> bool:
        """True only when the full validator would find no error (False: ask it)."""
        if outer is None or not outer.is_valid(result):
            return False
        for event in result.get("events") or ():
            name = event.get("event") if isinstance(event, dict) else None
            branch = by_name.get(name) if isinstance(name, str) else None
            if branch is None or not branch.is_valid(event):
                return False
        return True

    def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
        if surely_valid(result):
            return True
        error = exceptions.best_match(validator.iter_errors(result))
        if error is not None:
            error.message += (
                ". Failed to validate Action server response from API, make sure your response "
                f"from the Action endpoint is valid. For more information about the format visit "
                f"{DOCS_BASE_URL}/custom-actions"
            )
            raise error
        return True

    _validate_action_result.surely_valid = surely_valid  # type: ignore[attr-defined]  # for tests
    replace(RemoteAction, "_validate_action_result", _validate_action_result)


def _cache_domain_is_empty() -> None:
    from rasa.shared.core.domain import Domain

    original = Domain.is_empty

    def is_empty(self: Domain) -> bool:
        cached = self.__dict__.get("_cskh_is_empty")
        if cached is None:
            cached = bool(original(self))
            self.__dict__["_cskh_is_empty"] = cached
        return cached

    replace(Domain, "is_empty", is_empty)


def _tune_gc() -> None:
    raw = os.environ.get("RASA_GC_THRESHOLD", "50000").strip()
    try:
        threshold = int(raw)
    except ValueError:
        logger.warning("RASA_GC_THRESHOLD=%r is not an integer; keeping Python's default", raw)
        return
    if threshold > 0:
        _, second, third = gc.get_threshold()
        gc.set_threshold(threshold, second, third)


class _Ignored(ValueError):
    """A setting of these speed-ups that is wrong: warned about, not fatal."""


def _close_connections_now_and_then() -> None:
    try:  # unset: 0, Sanic's own keep-alive
        per_connection = env_number(os.environ, "RASA_REQUESTS_PER_CONNECTION", 0, int, _Ignored, lo=1)
    except _Ignored as e:
        logger.warning("%s; ignored", e)
        return
    if not per_connection:
        return
    import sanic
    from sanic.http import Http
    from sanic.touchup.service import TouchUp

    if not sanic.__version__.startswith("21.12."):
        logger.warning(
            "RASA_REQUESTS_PER_CONNECTION ignored: verified on Sanic 21.12 only, found %s",
            sanic.__version__,
        )
        return
    close_below = 1.0 / per_connection

    def close_now() -> bool:
        # Random, not counted: Sanic's Http keeps no per-connection state we can add to (slots).
        return random.random() < close_below

    # When an app starts, Sanic recompiles Http.http1_request_header from its source in sanic.http's
    # namespace (TouchUp: it drops the dispatch of unused signals), where a closure's variables do
    # not exist. So the replacement names nothing but `self`, and the original is registered for
    # the same recompilation under another name: it must be the recompiled one, as an unused signal
    # dispatched inline raises NotFound.
    Http._cskh_request_header = Http.http1_request_header  # type: ignore[attr-defined]
    Http._cskh_close_now = staticmethod(close_now)  # type: ignore[attr-defined]
    if not getattr(Http, "__touched__", False):
        TouchUp.register(Http, "_cskh_request_header")

    async def http1_request_header(self: Http) -> None:
        await self._cskh_request_header()  # type: ignore[attr-defined]
        if self._cskh_close_now():  # type: ignore[attr-defined]
            self.keep_alive = False  # answered with "connection: close"

    replace(Http, "http1_request_header", http1_request_header)


def _run_graph_in_order() -> None:
    from graphlib import TopologicalSorter

    from rasa.engine.exceptions import GraphRunError
    from rasa.engine.runner.dask import DaskGraphRunner

    def plan_for(self: DaskGraphRunner, targets: tuple[str, ...]) -> list[tuple[str, Any, tuple[str, ...]]]:
        plans = self.__dict__.setdefault("_cskh_plans", {})
        plan = plans.get(targets)
        if plan is None:
            nodes = self._graph_schema.minimal_graph_schema(list(targets)).nodes
            order = TopologicalSorter(
                {name: [n for n in node.needs.values() if n in nodes] for name, node in nodes.items()}
            ).static_order()
            plan = [
                (name, self._instantiated_nodes[name], tuple(nodes[name].needs.values())) for name in order
            ]
            plans[targets] = plan
        return plan

    def run(
        self: DaskGraphRunner, inputs: dict[str, Any] | None = None, targets: list[str] | None = None
    ) -> dict[str, Any]:
        run_targets = tuple(targets if targets else self._graph_schema.target_names)
        plan = plan_for(self, run_targets)
        # As in DaskGraphRunner: an input is passed on as (name, value) and replaces a node of
        # that name; a string input that names a node is refused.
        values: dict[str, Any] = {}
        for name, value in (inputs or {}).items():
            if isinstance(value, str) and (value in self._graph_schema.nodes or value in (inputs or {})):
                raise GraphRunError(
                    f"Input value '{value}' clashes with a node name. Make sure that none of the "
                    f"input names passed to the `run` method are the same as node names in the "
                    f"graph schema."
                )
            values[name] = (name, value)
        try:
            for name, node, needs in plan:
                if name not in values:
                    values[name] = node(*(values[n] for n in needs))
        except RuntimeError as e:
            raise GraphRunError("Error running runner.") from e
        return dict(values[t] for t in run_targets)

    DaskGraphRunner._cskh_dask_run = DaskGraphRunner.run  # type: ignore[attr-defined]
    replace(DaskGraphRunner, "run", run)


def _call_concrete_predict_function() -> None:
    import tensorflow as tf
    from keras.utils import tf_utils
    from rasa.shared.constants import DIAGNOSTIC_DATA
    from rasa.utils.tensorflow import models

    if not tf.__version__.startswith("2.12."):
        logger.warning(
            "concrete predict function not used: verified on TensorFlow 2.12, found %s", tf.__version__
        )
        return
    original = models.RasaModel._rasa_predict

    def _rasa_predict(self: models.RasaModel, batch_in: Any) -> dict[str, Any]:
        fast = self.__dict__.get("_cskh_concrete")
        if fast is None:  # the first call traces the function; later calls may take the short path
            outputs = original(self, batch_in)
            step = self._tf_predict_step
            if step is not None and not self._run_eagerly:
                try:
                    concrete = step.get_concrete_function()
                    dtypes = [spec.dtype for spec in step.input_signature[0]]
                    self.__dict__["_cskh_concrete"] = (concrete, dtypes)
                except (TypeError, ValueError, AttributeError) as e:
                    logger.warning("concrete predict function not available: %s", e)
                    self.__dict__["_cskh_concrete"] = False
            return outputs
        if fast is False or len(batch_in) != len(fast[1]):
            return original(self, batch_in)
        concrete, dtypes = fast
        try:
            flat = [tf.constant(x, dtype=d) for x, d in zip(batch_in, dtypes, strict=True)]
            outputs = tf_utils.sync_to_numpy_or_python_type(
                concrete._call_flat(flat, concrete.captured_inputs)
            )
        except Exception as e:  # noqa: BLE001 - private API: never fail a message because of it
            logger.warning("concrete predict function failed (%s); using TensorFlow's own call", e)
            self.__dict__["_cskh_concrete"] = False
            return original(self, batch_in)
        if DIAGNOSTIC_DATA in outputs:
            outputs[DIAGNOSTIC_DATA] = self._empty_lists_to_none_in_dict(outputs[DIAGNOSTIC_DATA])
        return outputs

    models.RasaModel._cskh_original_predict = original  # type: ignore[attr-defined]
    replace(models.RasaModel, "_rasa_predict", _rasa_predict)


# What `copy.copy` looks up to copy an object: a class defining none of them (beyond `object`'s)
# is copied as a new instance with the same `__dict__`.
_COPY_HOOKS = (
    "__reduce_ex__",
    "__reduce__",
    "__getstate__",
    "__setstate__",
    "__getnewargs_ex__",
    "__getnewargs__",
)


def copies_as_plain_object(cls: type) -> bool:
    """True when `copy.copy` of an instance of `cls` is `cls.__new__(cls)` with the instance's
    `__dict__` copied in: no reduction or state hooks of its own, no slot names (`abc.ABC`'s empty
    `__slots__` adds none; `copyreg._slotnames` is what `object.__reduce_ex__` asks), object's `__new__`."""
    if cls.__new__ is not object.__new__:
        return False
    if any(getattr(cls, hook, None) is not getattr(object, hook, None) for hook in _COPY_HOOKS):
        return False
    return not copyreg._slotnames(cls)  # type: ignore[attr-defined]


def _copy_slots_directly() -> None:
    import copy

    from rasa.shared.core.slots import Slot

    if "__copy__" in vars(Slot):
        raise _Ignored("rasa.shared.core.slots.Slot defines __copy__ already")
    plain: dict[type, bool] = {}

    def __copy__(self: Slot) -> Slot:
        cls = type(self)
        verdict = plain.get(cls)
        if verdict is None:
            verdict = plain[cls] = copies_as_plain_object(cls)
        if not verdict:  # what copy.copy does for a class without __copy__
            return copy._reconstruct(self, None, *self.__reduce_ex__(4))  # type: ignore[attr-defined, no-any-return]
        new = object.__new__(cls)
        new.__dict__.update(self.__dict__)
        return new

    Slot.__copy__ = __copy__  # type: ignore[attr-defined]


def hstack_coo(a: Any, b: Any) -> Any:
    """`scipy.sparse.hstack([a, b])` (a COO matrix) for two sparse matrices with as many rows."""
    import numpy as np
    from scipy import sparse

    a, b = a.tocoo(copy=False), b.tocoo(copy=False)
    return sparse.coo_matrix(
        (
            np.concatenate([a.data, b.data]),
            (np.concatenate([a.row, b.row]), np.concatenate([a.col, b.col + a.shape[1]])),
        ),
        shape=(a.shape[0], a.shape[1] + b.shape[1]),
    )


def _join_sparse_features_directly() -> None:
    from rasa.shared.nlu.training_data.features import Features

    original = Features._combine_sparse_features

    def _combine_sparse_features(self: Features, additional_features: Features) -> None:
        if self.features.shape[0] != additional_features.features.shape[0]:
            original(self, additional_features)  # raises Rasa's own error
            return
        self.features = hstack_coo(self.features, additional_features.features)
        self._cached_fingerprint = None

    replace(Features, "_combine_sparse_features", _combine_sparse_features)


def _copy_features_shallowly() -> None:
    import copy

    from rasa.shared.nlu.training_data.message import Message

    def _combine_features(features: list[Any], featurizers: list[str]) -> Any:
        # Rasa deep-copies the first Features (its matrix through scipy's pickling protocol) before
        # joining the others to it: 6 % of a parse. Joining makes a new matrix and never changes one
        # in place, so the copy needs only its own object and its own copy of the matrix.
        combined = None
        for f in features:
            if combined is None:
                combined = copy.copy(f)
                combined.features = f.features.copy()
                combined.origin = featurizers
            else:
                combined.combine_with_features(f)
        return combined

    replace(Message, "_combine_features", _combine_features)


RULE_KEYS_KEPT = 20_000  # parsed rule keys kept (a model has hundreds)


def _match_rules_from_parsed_keys() -> None:
    from rasa.core.policies.rule_policy import PREVIOUS_ACTION, RulePolicy

    parsed: dict[str, tuple[Any, ...]] = {}

    def tuples(value: Any) -> Any:
        # What _does_rule_match_state turns a rule's list value into on every comparison.
        return tuple(value) if isinstance(value, list) else value

    def reversed_rule_states(rule_key: str) -> tuple[Any, ...]:
        states = parsed.get(rule_key)
        if states is None:
            if len(parsed) > RULE_KEYS_KEPT:  # serving asks for the model's own rules only
                parsed.clear()
            states = tuple(
                {kind: {k: tuples(v) for k, v in sub.items()} for kind, sub in state.items()}
                for state in reversed(RulePolicy._rule_key_to_state(rule_key))
            )
            parsed[rule_key] = states
        return states

    def _is_rule_applicable(
        self: RulePolicy, rule_key: str, turn_index: int, conversation_state: Any
    ) -> bool:
        # Rasa's function, with the rule's states parsed, reversed and their lists made tuples once
        # per rule instead of on every call (RulePolicy asks it for every rule and every turn).
        states = reversed_rule_states(rule_key)
        if turn_index >= len(states):
            return True
        current_previous_action = conversation_state.get(PREVIOUS_ACTION)
        rule_previous_action = states[turn_index].get(PREVIOUS_ACTION)
        if not rule_previous_action and not current_previous_action:
            return True
        if not rule_previous_action or not current_previous_action:
            return False
        return self._does_rule_match_state(states[turn_index], conversation_state)

    replace(RulePolicy, "_is_rule_applicable", _is_rule_applicable)


def rules_by_last_action(rule_keys: Any) -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    """For each previous action named by the last state of some rule (`action_name`): the keys of
    the rules that can fit a conversation whose last action is that one, i.e. those rules and the
    ones whose last state names no action (no previous action, `action_text`, "should not be
    set"); and those alone, for any other action."""
    from rasa.core.policies.rule_policy import PREVIOUS_ACTION, RulePolicy
    from rasa.shared.core.constants import SHOULD_NOT_BE_SET
    from rasa.shared.nlu.constants import ACTION_NAME

    named: dict[str, list[str]] = {}
    other: list[str] = []
    for key in rule_keys:
        states = RulePolicy._rule_key_to_state(key)
        name = (states[-1].get(PREVIOUS_ACTION) or {}).get(ACTION_NAME) if states else None
        if isinstance(name, str) and name and name != SHOULD_NOT_BE_SET:
            named.setdefault(name, []).append(key)
        else:
            other.append(key)
    return {name: frozenset(other + keys) for name, keys in named.items()}, frozenset(other)


def _index_rules_by_last_action() -> None:
    from rasa.core.policies.rule_policy import PREVIOUS_ACTION, RulePolicy
    from rasa.shared.nlu.constants import ACTION_NAME

    # id(lookup) -> (the lookup, its keys when indexed, the index); lookups never change after
    # training, and a changed one is indexed again.
    indexes: dict[int, tuple[Any, frozenset[str], tuple[dict[str, frozenset[str]], frozenset[str]]]] = {}

    def _get_possible_keys(self: RulePolicy, lookup: dict[str, str], states: list[Any]) -> set[str]:
        if not states:
            return set(lookup.keys())
        known = indexes.get(id(lookup))
        if (
            known is None
            or known[0] is not lookup
            or len(known[1]) != len(lookup)
            or not known[1].issuperset(lookup)
        ):
            if len(indexes) > 16:
                indexes.clear()
            known = indexes[id(lookup)] = (lookup, frozenset(lookup), rules_by_last_action(lookup))
        named, other = known[2]
        last = states[-1]
        name = (last.get(PREVIOUS_ACTION) or {}).get(ACTION_NAME)
        # Only these can pass Rasa's check of the last state: the others name another action.
        candidates = (named.get(name) or other) if isinstance(name, str) else known[1]
        # Rasa's passes, the first one asking only the candidates (filtered in Rasa's order, so the
        # sets are built, and iterate, as Rasa's do).
        possible_keys = set(lookup.keys())
        for i, state in enumerate(reversed(states)):
            possible_keys = set(
                filter(
                    lambda key: (i > 0 or key in candidates) and self._is_rule_applicable(key, i, state),
                    possible_keys,
                )
            )
        return possible_keys

    replace(RulePolicy, "_get_possible_keys", _get_possible_keys)


def count_matrix(vectorizer: Any, docs: list[str]) -> Any:
    """`vectorizer.transform(docs)` with sorted indices, as a COO matrix: what Rasa's
    CountVectorsFeaturizer makes of it, built directly from the fitted vocabulary.

    scikit-learn builds a CSR matrix (and its analyzer) per call, Rasa sorts it and converts it to
    COO: the matrix objects were most of the featurizer's 6 % of the Rasa workers' CPU under load.
    Same counting as `CountVectorizer._count_vocab(fixed_vocab=True)`: the analyzer's features,
    out-of-vocabulary ones ignored, counts per document (1 when `binary`), columns sorted.
    """
    import numpy as np
    from scipy import sparse

    vocabulary = getattr(vectorizer, "vocabulary_", None)
    if vocabulary is None:  # not fitted: scikit-learn's own way (its error, or a given vocabulary)
        matrix = vectorizer.transform(docs)
        matrix.sort_indices()
        return matrix.tocoo()
    cached = vectorizer.__dict__.get("_cskh_analyzer")
    if cached is None or cached[0] is not vocabulary:  # a new fit gets a new vocabulary dict
        cached = (vocabulary, vectorizer.build_analyzer())
        vectorizer.__dict__["_cskh_analyzer"] = cached
    analyze, binary = cached[1], vectorizer.binary
    rows: list[int] = []
    cols: list[int] = []
    values: list[int] = []
    for i, doc in enumerate(docs):
        counts: dict[int, int] = {}
        for feature in analyze(doc):
            j = vocabulary.get(feature)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        for j in sorted(counts):
            rows.append(i)
            cols.append(j)
            values.append(1 if binary else counts[j])
    return sparse.coo_matrix(
        (
            np.asarray(values, dtype=vectorizer.dtype),
            (np.asarray(rows, dtype=np.int32), np.asarray(cols, dtype=np.int32)),
        ),
        shape=(len(docs), len(vocabulary)),
    )


def _count_vectors_directly() -> None:
    from rasa.nlu.featurizers.sparse_featurizer import count_vectors_featurizer as cvf

    def _create_features(
        self: cvf.CountVectorsFeaturizer, attribute: str, all_tokens: list[list[str]]
    ) -> tuple[list[Any], list[Any]]:
        # Rasa's own loop (its two `if not tokens` branches are one), with `count_matrix` in place
        # of `transform`, `sort_indices` and `tocoo`.
        vectorizer = self.vectorizers.get(attribute)
        if not vectorizer:
            return [None], [None]
        sequence_features: list[Any] = []
        sentence_features: list[Any] = []
        for tokens in all_tokens:
            if not tokens:
                sequence_features.append(None)
                sentence_features.append(None)
                continue
            sequence_features.append(count_matrix(vectorizer, tokens))
            if attribute in cvf.DENSE_FEATURIZABLE_ATTRIBUTES:
                sentence_features.append(count_matrix(vectorizer, [" ".join(tokens)]))
            else:
                sentence_features.append(None)
        return sequence_features, sentence_features

    replace(cvf.CountVectorsFeaturizer, "_create_features", _create_features)


POOLED_IDLE_S = 2.0


@dataclass(frozen=True)
class _DomainJson:
    domain: dict[str, Any]  # held, so its id cannot be reused by another dict while cached
    whole: str
    lean: str  # without the responses: what the validate_* form actions get
    whole_for: frozenset[str]  # validate_* actions marked `send_domain: true`: they get it whole


_domain_json: list[_DomainJson] = []  # the last domain seen (one per loaded model)
LEAN_DROPS = ("responses",)


def _encoded(domain: dict[str, Any]) -> _DomainJson:
    if _domain_json and _domain_json[0].domain is domain:
        return _domain_json[0]
    marked = {
        name
        for entry in domain.get("actions") or ()
        if isinstance(entry, dict)
        for name, config in entry.items()
        if isinstance(config, dict) and config.get("send_domain")
    }
    lean = {k: v for k, v in domain.items() if k not in LEAN_DROPS}
    _domain_json[:] = [_DomainJson(domain, dumps(domain), dumps(lean), frozenset(marked))]
    return _domain_json[0]


def dumps(obj: Any) -> str:
    """Compact JSON of `obj` (ASCII, as `json.dumps` escapes it): ujson, else `json.dumps`."""
    try:
        return ujson.dumps(obj, escape_forward_slashes=False, reject_bytes=True)
    except (TypeError, ValueError, OverflowError):
        return json.dumps(obj)  # raises the TypeError stock Rasa raises for what JSON cannot hold


def dumps_reusing_domain(body: Any) -> str:
    """The JSON of `body` (`dumps`), with the JSON of `body["domain"]` encoded once per domain
    object, and without its responses for a validate_* form action not marked `send_domain: true`."""
    domain = body.get("domain") if isinstance(body, dict) else None
    if not isinstance(domain, dict) or next(reversed(body)) != "domain":
        return dumps(body)
    encoded = _encoded(domain)
    action = body.get("next_action")
    lean = isinstance(action, str) and action.startswith("validate_") and action not in encoded.whole_for
    rest = dict(body)
    del rest["domain"]
    head = dumps(rest)
    return f'{head[:-1]}{"," if rest else ""}"domain":{encoded.lean if lean else encoded.whole}}}'


def _pool_endpoint_connections() -> None:
    import asyncio

    import aiohttp
    from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT, EndpointConfig

    def session(self: EndpointConfig) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        pooled = self.__dict__.get("_cskh_connector")
        if pooled is None or pooled[0] is not loop or pooled[1].closed:
            pooled = (loop, aiohttp.TCPConnector(keepalive_timeout=POOLED_IDLE_S))
            self.__dict__["_cskh_connector"] = pooled
        auth = (
            aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"])
            if self.basic_auth
            else None
        )
        # Same session as Rasa's, but closing it leaves the connections in the shared pool.
        return aiohttp.ClientSession(
            headers=self.headers,
            auth=auth,
            timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
            connector=pooled[1],
            connector_owner=False,
            json_serialize=dumps_reusing_domain,
        )

    replace(EndpointConfig, "session", session)


# The functions each speed-up replaces, or whose behaviour it reproduces, as written for Rasa 3.6.21
# and Sanic 21.12.2 (tests/deploy/test_rasa_patches.py).
PATCHES = (
    Patch(
        "rasa_speedups.cache_event_types",
        _cache_event_types,
        pins(
            (
                "rasa.shared.core.events:Event.resolve_by_type",
                "b5cf570fa7f286c7059ec73d8880528d03a78b28cf4e80285a46079c0fa65968",
            )
        ),
    ),
    Patch(
        "rasa_speedups.prebuild_action_validator",
        _prebuild_action_validator,
        pins(
            (
                "rasa.core.actions.action:RemoteAction._validate_action_result",
                "f8cdb4be6812396167ced74161b2ccd65c5ea676ad86d7d359d8c322d9d8dc42",
            ),
            (
                "rasa.core.actions.action:RemoteAction.action_response_format_spec",
                "091b74aa3738d1262cf3c028386aaf9dd4f0d5c1374b62392411d70a79104a46",
            ),
        ),
    ),
    Patch(
        "rasa_speedups.cache_domain_is_empty",
        _cache_domain_is_empty,
        pins(
            (
                "rasa.shared.core.domain:Domain.is_empty",
                "884be90ef485f1d2c0f140657a47f106a7d2785b63b03e46cd699b4072e95369",
            )
        ),
    ),
    Patch("rasa_speedups.tune_gc", _tune_gc),
    Patch(
        "rasa_speedups.close_connections_now_and_then",
        _close_connections_now_and_then,
        pins(
            (
                "sanic.http:Http.http1_request_header",
                "e52905046f155b2956747e86de2aa1011a021f597b9216fb122fa6d490e8f31a",
            ),
            (
                "sanic.touchup.service:TouchUp.run",
                "10de338b5a27f53aefd98e72d077eff53526313d52007fe6d0a40708ce626630",
            ),
        ),
    ),
    Patch(
        "rasa_speedups.run_graph_in_order",
        _run_graph_in_order,
        pins(
            (
                "rasa.engine.runner.dask:DaskGraphRunner.run",
                "45f0f52f574f3aa9546a552bf671183e171092c18b66e97f5771a7fa295de37e",
            ),
            (
                "rasa.engine.runner.dask:DaskGraphRunner.__init__",
                "29f069a010bd16a54bce609b8a31f757b2af90f2cb9c1c85b62ffbd27f104284",
            ),
        ),
    ),
    Patch(
        "rasa_speedups.call_concrete_predict_function",
        _call_concrete_predict_function,
        pins(
            (
                "rasa.utils.tensorflow.models:RasaModel._rasa_predict",
                "7f745b0f9cb647c9df9e5b04b318a7b93709daf9460bad4373970c6cf9f04d8f",
            )
        ),
    ),
    Patch(
        "rasa_speedups.join_sparse_features_directly",
        _join_sparse_features_directly,
        pins(
            (
                "rasa.shared.nlu.training_data.features:Features._combine_sparse_features",
                "9837d864e5983243704cf14616ef9abe181c6f141cc0f9b324c4310629cc133d",
            )
        ),
    ),
    Patch(
        "rasa_speedups.count_vectors_directly",
        _count_vectors_directly,
        pins(
            (
                "rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer:CountVectorsFeaturizer._create_features",
                "d841f50f6649704ad33893be4a6e5b4197c2c4df53432ae43e2801bc2fb18783",
            ),
            (
                "sklearn.feature_extraction.text:CountVectorizer.transform",
                "7a42f9ec6f2e82aa928aa0a6b69e48322140af7f4a2330710daf6c0e89b971a0",
            ),
            (
                "sklearn.feature_extraction.text:CountVectorizer._count_vocab",
                "7302a9c343e514c9d204a46e260223c08e2aa1e9ccb2267bb53838e00b37852d",
            ),
        ),
    ),
    Patch(
        "rasa_speedups.copy_features_shallowly",
        _copy_features_shallowly,
        pins(
            (
                "rasa.shared.nlu.training_data.message:Message._combine_features",
                "6f88fa43154948bd3f5285324dcba76bf4f80a4a8632a02dff16cd0b0f9631fa",
            ),
            (
                "rasa.shared.nlu.training_data.features:Features.combine_with_features",
                "80e355ae45856d9248e03713424dad25c1c9120b2d305d2c154ea1bc0b8e0b26",
            ),
            (
                "rasa.shared.nlu.training_data.features:Features._combine_dense_features",
                "bb55361816e5a3978c14de3383e9fc185c83c1e0550609d597b0d92a6ae1f6c8",
            ),
        ),
    ),
    Patch(
        "rasa_speedups.match_rules_from_parsed_keys",
        _match_rules_from_parsed_keys,
        pins(
            (
                "rasa.core.policies.rule_policy:RulePolicy._is_rule_applicable",
                "64a108b016b46e573d6020b755a6036439dc207a364b45c9ea5dcb0f18dc7068",
            ),
            (
                "rasa.core.policies.rule_policy:RulePolicy._does_rule_match_state",
                "d3109c1a97de319ceee17570d2d96b51c2fa0006379c5a491d5ed7df136666a7",
            ),
            (
                "rasa.core.policies.rule_policy:RulePolicy._rule_key_to_state",
                "b91b949bbccbff0bdd67604e957b8884becef48ebc634c655c01bb5e6e93677e",
            ),
        ),
    ),
    Patch(
        "rasa_speedups.pool_endpoint_connections",
        _pool_endpoint_connections,
        pins(
            (
                "rasa.utils.endpoints:EndpointConfig.session",
                "e55aa13d9d4fb4bc440ac33b870a97ee162b76dda7ccb6bf68433567475fdffb",
            ),
            (
                "rasa.utils.endpoints:EndpointConfig.request",
                "ccdb778aed8208e23cde3c3f47eac7fbbbb735dac8f7ef7254d54451c64ad608",
            ),
        ),
    ),
    Patch(
        "rasa_speedups.copy_slots_directly",
        _copy_slots_directly,
        pins(
            # Python 3.10's copy.copy and what it calls for an object without __copy__.
            ("copy:copy", "99ed800055d44c83a26d7286dc552756d4a21d748256943e97cf028559ec8825"),
            ("copy:_reconstruct", "5fdc36411504e8d96f605076f49b568ed976708d016ee362f58b13951ce0dc8f"),
        ),
    ),
    Patch(
        "rasa_speedups.index_rules_by_last_action",
        _index_rules_by_last_action,
        pins(
            (
                "rasa.core.policies.rule_policy:RulePolicy._get_possible_keys",
                "2915fd81711e194c6d667728e00bd0e51e9c1c2791a0be14c55f0ef9938f9936",
            ),
            # What the index relies on: a named previous action must equal the conversation's.
            (
                "rasa.core.policies.rule_policy:RulePolicy._is_rule_applicable",
                "64a108b016b46e573d6020b755a6036439dc207a364b45c9ea5dcb0f18dc7068",
            ),
            (
                "rasa.core.policies.rule_policy:RulePolicy._does_rule_match_state",
                "d3109c1a97de319ceee17570d2d96b51c2fa0006379c5a491d5ed7df136666a7",
            ),
        ),
    ),
)
