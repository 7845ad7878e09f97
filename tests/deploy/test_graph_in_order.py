"""deploy/rasa_speedups.py runs the model graph in a precomputed order instead of through dask,
and calls the TensorFlow models' concrete predict function directly: on the real model, NLU
parses and policy predictions must equal Rasa's own, input for input; so must the other
speed-ups of a parse and a prediction (count matrices, shallow feature copies, rule matching)."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from rasa.core.agent import Agent
from rasa.core.channels.channel import UserMessage
from rasa.engine.constants import PLACEHOLDER_MESSAGE, PLACEHOLDER_TRACKER
from rasa.engine.exceptions import GraphRunError
from rasa.engine.runner.dask import DaskGraphRunner

from deploy import rasa_fast_start, rasa_patches, rasa_speedups

TEXTS = [
    "xin chào",
    "tôi muốn tra cứu hồ sơ",
    "Điện lực Tam Kỳ, mã PC05TK0000123",
    "dien luc hai chau ten Nguyen Van An",
    "số hotline là gì",
    "ký hợp đồng bằng usb token được không",
    "mã otp 123456",
    "asdkjh qweoiu",
]

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def agent(trained_model: Path) -> Agent:
    assert rasa_speedups.install()
    # The model loaded as the Rasa server loads it: without the training step (tests/test_rasa_fast_start.py).
    assert rasa_patches.install(rasa_fast_start.PATCHES) == []
    return Agent.load(str(trained_model))


def _nlu(runner: DaskGraphRunner, run: object, target: str, text: str) -> dict[str, object]:
    out = run(runner, {PLACEHOLDER_MESSAGE: [UserMessage(text)]}, [target])  # type: ignore[operator]
    msg = out[target][0]
    return {k: msg.get(k) for k in ("intent", "entities", "intent_ranking", "response_selector")}


async def test_parses_and_predictions_equal_dask(agent: Agent) -> None:
    processor = agent.processor
    assert processor is not None
    runner = processor.graph_runner
    assert isinstance(runner, DaskGraphRunner)
    ordered, dask_run = DaskGraphRunner.run, DaskGraphRunner._cskh_dask_run  # type: ignore[attr-defined]
    assert ordered is not dask_run
    nlu, core = processor.model_metadata.nlu_target, processor.model_metadata.core_target
    for text in TEXTS:
        assert _nlu(runner, ordered, nlu, text) == _nlu(runner, dask_run, nlu, text), text

    sender = f"graph-{uuid.uuid4().hex[:8]}"
    compared = 0
    for text in TEXTS[:4]:
        await processor.log_message(UserMessage(text, sender_id=sender))
        tracker = await processor.get_tracker(sender)
        a = ordered(runner, {PLACEHOLDER_TRACKER: tracker}, [core])[core]
        b = dask_run(runner, {PLACEHOLDER_TRACKER: tracker}, [core])[core]
        assert (a.policy_name, a.probabilities, a.is_end_to_end_prediction) == (
            b.policy_name,
            b.probabilities,
            b.is_end_to_end_prediction,
        )
        compared += 1
    print(f"\n[graph] {len(TEXTS)} parses and {compared} predictions equal to dask's")


def test_an_input_that_names_a_node_is_refused(agent: Agent) -> None:
    runner = agent.processor.graph_runner  # type: ignore[union-attr]
    node = next(iter(runner._graph_schema.nodes))
    with pytest.raises(GraphRunError):
        runner.run({PLACEHOLDER_MESSAGE: node}, [agent.processor.model_metadata.nlu_target])  # type: ignore[union-attr]


def test_concrete_predict_function_gives_the_same_parses(agent: Agent) -> None:
    from rasa.utils.tensorflow import models

    processor = agent.processor
    assert processor is not None
    runner, nlu = processor.graph_runner, processor.model_metadata.nlu_target
    fast = models.RasaModel._rasa_predict
    original = models.RasaModel._cskh_original_predict  # type: ignore[attr-defined]
    assert fast is not original
    texts = TEXTS + ["cần giấy tờ gì để đăng ký", "bao lâu thì xong", "đổi số điện thoại liên hệ"]
    got = [_nlu(runner, DaskGraphRunner.run, nlu, t) for t in texts]
    used = [
        n.__dict__.get("_cskh_concrete")
        for n in (node._component for node in runner._instantiated_nodes.values())
        if isinstance(getattr(n, "model", None), models.RasaModel)
        for n in [n.model]
    ]
    assert len(used) >= 2 and all(isinstance(u, tuple) for u in used), used  # DIET and the FAQ selector
    models.RasaModel._rasa_predict = original  # type: ignore[method-assign]
    try:
        want = [_nlu(runner, DaskGraphRunner.run, nlu, t) for t in texts]
    finally:
        models.RasaModel._rasa_predict = fast  # type: ignore[method-assign]
    assert got == want
    faq = [g for g in got if g["intent"]["name"] == "faq"]  # type: ignore[index]
    assert faq, "no FAQ message: the selector's model was not exercised"
    print(f"\n[tf] {len(texts)} parses ({len(faq)} FAQ) equal through the concrete function")


def test_hstack_coo_equals_scipy_hstack() -> None:
    import numpy as np
    from scipy import sparse

    from deploy.rasa_speedups import hstack_coo

    for rows, left, right in [(1, 3, 7), (6, 40, 1), (12, 300, 900)]:
        a = sparse.random(rows, left, density=0.2, format="coo", random_state=1, dtype=np.float32)
        b = sparse.random(rows, right, density=0.1, format="csr", random_state=2, dtype=np.float64)
        got, want = hstack_coo(a, b), sparse.hstack([a, b])
        assert got.format == want.format == "coo"
        assert got.shape == want.shape and got.dtype == want.dtype
        assert np.array_equal(got.toarray(), want.toarray())
    empty = sparse.coo_matrix((2, 4), dtype=np.float32)
    assert np.array_equal(hstack_coo(empty, empty).toarray(), np.zeros((2, 8)))


@contextmanager
def _stock(owner: object, name: str, stock: object) -> Iterator[None]:
    """Rasa's own `owner.name` for the duration (our speed-up back afterwards)."""
    fast = inspect.getattr_static(owner, name)
    setattr(owner, name, stock)
    try:
        yield
    finally:
        setattr(owner, name, fast)


def _heldout_texts() -> list[str]:
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(Path(__file__).parents[1] / "nlu" / "heldout.yml"))
    return [m.get("text") for m in data.training_examples]


def test_count_vectors_built_directly_equal_scikit_learns(agent: Agent) -> None:
    """deploy/rasa_speedups.count_matrix against CountVectorizer.transform + sort_indices + tocoo,
    matrix for matrix, on the model's own vectorizers (words and character n-grams) and the
    held-out messages; then whole parses with Rasa's own `_create_features`."""
    import numpy as np
    from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import (
        CountVectorsFeaturizer,
    )
    from sklearn.exceptions import NotFittedError

    from deploy.source_pins import original

    processor = agent.processor
    assert processor is not None
    runner, nlu = processor.graph_runner, processor.model_metadata.nlu_target
    featurizers = [
        node._component
        for node in runner._instantiated_nodes.values()
        if isinstance(node._component, CountVectorsFeaturizer)
    ]
    assert len(featurizers) == 2
    texts = _heldout_texts()
    assert len(texts) > 150
    compared = 0
    for featurizer in featurizers:
        for vectorizer in featurizer.vectorizers.values():
            if not hasattr(vectorizer, "vocabulary_"):  # an attribute without training data
                with pytest.raises(NotFittedError):
                    rasa_speedups.count_matrix(vectorizer, ["x"])
                continue
            for text in texts + ["", "   ", "PC05TK0000123", "zzzzqqq xyzzy"]:
                tokens = text.lower().split()
                for docs in (tokens or ["x"], [" ".join(tokens)]):
                    want = vectorizer.transform(docs)
                    want.sort_indices()
                    want = want.tocoo()
                    got = rasa_speedups.count_matrix(vectorizer, docs)
                    assert got.format == "coo" and got.shape == want.shape, text
                    for field in ("row", "col", "data"):
                        a, b = getattr(got, field), getattr(want, field)
                        assert a.dtype == b.dtype and np.array_equal(a, b), (text, field)
                    compared += 1

    fast = CountVectorsFeaturizer._create_features
    stock = original(fast)
    assert stock is not fast
    got_parses = [_nlu(runner, DaskGraphRunner.run, nlu, t) for t in texts]
    with _stock(CountVectorsFeaturizer, "_create_features", stock):
        want_parses = [_nlu(runner, DaskGraphRunner.run, nlu, t) for t in texts]
    assert got_parses == want_parses
    print(f"\n[cv] {compared} count matrices and {len(texts)} parses equal to scikit-learn's")


def test_features_copied_shallowly_give_the_same_parses(agent: Agent) -> None:
    """Message._combine_features without the deep copy: same parses as Rasa's, and the features a
    message keeps are not changed by combining them (a second parse of each text is the same)."""
    from rasa.shared.nlu.training_data.message import Message

    from deploy.source_pins import original

    processor = agent.processor
    assert processor is not None
    runner, nlu = processor.graph_runner, processor.model_metadata.nlu_target
    fast = Message.__dict__["_combine_features"]
    stock = staticmethod(original(fast.__func__))
    assert stock.__func__ is not fast.__func__
    texts = _heldout_texts()
    got = [_nlu(runner, DaskGraphRunner.run, nlu, t) for t in texts]
    assert got == [_nlu(runner, DaskGraphRunner.run, nlu, t) for t in texts]
    with _stock(Message, "_combine_features", stock):
        want = [_nlu(runner, DaskGraphRunner.run, nlu, t) for t in texts]
    assert got == want


async def test_rules_matched_from_parsed_keys_answer_as_rasas_own(agent: Agent) -> None:
    """RulePolicy._is_rule_applicable with the rule keys parsed once: the same verdict as Rasa's for
    every rule of the model against every state of every rule (as conversation states) at every
    turn index, and the same predictions on a conversation."""
    from rasa.core.policies.rule_policy import RULES, RulePolicy

    from deploy.source_pins import original

    processor = agent.processor
    assert processor is not None
    runner = processor.graph_runner
    [policy] = [
        node._component
        for node in runner._instantiated_nodes.values()
        if isinstance(node._component, RulePolicy)
    ]
    fast = RulePolicy._is_rule_applicable
    stock = original(fast)
    assert stock is not fast
    keys = list(policy.lookup[RULES])
    states = [s for key in keys for s in RulePolicy._rule_key_to_state(key)]
    states += [{}, {"prev_action": {"action_name": "action_listen"}}]
    longest = max(len(RulePolicy._rule_key_to_state(k)) for k in keys)
    checked = 0
    for key in keys:
        for state in states[::3]:
            for turn in range(longest + 1):
                assert fast(policy, key, turn, state) == stock(policy, key, turn, state), (key, turn, state)
                checked += 1

    core = processor.model_metadata.core_target
    sender = f"rules-{uuid.uuid4().hex[:8]}"
    for text in TEXTS[:4]:
        await processor.log_message(UserMessage(text, sender_id=sender))
        tracker = await processor.get_tracker(sender)
        got = runner.run({PLACEHOLDER_TRACKER: tracker}, [core])[core]
        with _stock(RulePolicy, "_is_rule_applicable", stock):
            want = runner.run({PLACEHOLDER_TRACKER: tracker}, [core])[core]
        assert (got.policy_name, got.probabilities) == (want.policy_name, want.probabilities), text
    print(f"\n[rules] {len(keys)} rules, {checked} checks equal to Rasa's")


async def test_rules_found_through_the_last_action_index_are_rasas(agent: Agent) -> None:
    """RulePolicy._get_possible_keys checking on the last state only the rules indexed under the
    conversation's last action: the same rules, in the same set order, as Rasa's, for every rule's
    own states as a conversation (and each of their tails), odd last states, and a real conversation."""
    from rasa.core.policies.rule_policy import RULES, RULES_FOR_LOOP_UNHAPPY_PATH, RulePolicy

    from deploy.source_pins import original

    processor = agent.processor
    assert processor is not None
    [policy] = [
        node._component
        for node in processor.graph_runner._instantiated_nodes.values()
        if isinstance(node._component, RulePolicy)
    ]
    fast = RulePolicy._get_possible_keys
    stock = original(fast)
    assert stock is not fast
    conversations: list[list[dict[str, object]]] = [[]]
    for lookup_name in (RULES, RULES_FOR_LOOP_UNHAPPY_PATH):
        for key in policy.lookup[lookup_name]:
            states = RulePolicy._rule_key_to_state(key)
            conversations += [states[i:] for i in range(len(states))]
    conversations += [
        [{}],
        [{"prev_action": {"action_text": "xin chào"}}],
        [{"prev_action": {"action_name": "no_such_action"}, "user": {"intent": "greet"}}],
    ]
    sender = f"index-{uuid.uuid4().hex[:8]}"
    for text in TEXTS:
        await processor.log_message(UserMessage(text, sender_id=sender))
        tracker = await processor.get_tracker(sender)
        conversations.append(tracker.past_states(processor.domain))
    checked = 0
    for lookup_name in (RULES, RULES_FOR_LOOP_UNHAPPY_PATH):
        lookup = policy.lookup[lookup_name]
        for states in conversations:
            got, want = fast(policy, lookup, states), stock(policy, lookup, states)
            assert got == want and list(got) == list(want), states
            checked += 1
    assert any(fast(policy, policy.lookup[RULES], s) for s in conversations)  # some rules do fit
    print(f"\n[rule index] {checked} lookups equal to Rasa's")
