"""deploy/rasa_finetune.py: a finetune's one-example fits run eagerly, and nothing else changes.

On a tiny project trained in graph mode (run_eagerly false, as the project's own config): the DIET
loaded for a finetune holds exactly what its checkpoint holds, optimizer included (what Rasa's own
load gives: it overwrites its one-example fit with the checkpoint); a finetune with new words (the
sparse layers grow: `_compile_and_fit`) makes its one-example fits eagerly and its real training in
a traced graph, and has learnt the new examples.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deploy import rasa_finetune, rasa_patches
from tests.trainer.conftest import CONFIG, write_project

pytestmark = pytest.mark.slow

# The trainer tests' tiny pipeline without its response selector, traced as in production (their
# config runs eagerly to save time).
GRAPH_CONFIG = (
    CONFIG[: CONFIG.index("  - name: ResponseSelector")] + CONFIG[CONFIG.index("policies:") :]
).replace("    run_eagerly: true\n", "")
NEW_WORDS = "    - alo\n    - khỏe không bạn ơi\n    - xin kính chào quý khách\n"
# Training examples after the edit, two of them new: what the finetuned model must have learnt.
MESSAGES = ["khỏe không bạn ơi", "xin kính chào quý khách", "xin chào", "tạm biệt", "hẹn gặp lại"]
EXPECTED = ["greet", "greet", "greet", "goodbye", "goodbye"]


def train(root: Path, out: Path, name: str, finetune: Path | None = None) -> Path:
    from rasa.model_training import train_nlu

    train_nlu(
        config=str(root / "config.yml"),
        nlu_data=str(root / "bot/data/nlu"),
        output=str(out),
        fixed_model_name=name,
        domain=str(root / "domain.yml"),
        model_to_finetune=str(finetune) if finetune else None,
        finetuning_epoch_fraction=1.0,
    )
    return out / f"{name}.tar.gz"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    base = tmp_path_factory.mktemp("finetune")
    root = write_project(base / "proj")
    (root / "config.yml").write_text(GRAPH_CONFIG, encoding="utf-8")
    yield root, train(root, base / "models", "base")


def diet_loaded_for_finetune(model_file: Path, storage: Path) -> Any:
    from rasa.engine.graph import ExecutionContext
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.nlu.classifiers.diet_classifier import DIETClassifier

    model_storage, metadata = LocalModelStorage.from_model_archive(storage, model_file)
    node = next(n for n in metadata.predict_schema.nodes.values() if n.uses is DIETClassifier)
    context = ExecutionContext(metadata.predict_schema, metadata.model_id, is_finetuning=True)
    from rasa.utils.common import override_defaults

    config = override_defaults(DIETClassifier.get_default_config(), node.config)  # as Rasa's GraphNode
    return DIETClassifier.load(config, model_storage, node.resource, context).model


def checkpoint(prefix: Path) -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(prefix))
    names = set(reader.get_variable_to_shape_map()) - {"_CHECKPOINTABLE_OBJECT_GRAPH"}
    return {name: reader.get_tensor(name) for name in names}


def test_the_model_loaded_for_a_finetune_holds_its_checkpoint(
    project: tuple[Path, Path], tmp_path: Path
) -> None:
    _, model_file = project
    assert rasa_patches.install(rasa_finetune.PATCHES) == []
    model = diet_loaded_for_finetune(model_file, tmp_path / "storage")
    (saved,) = (p.with_suffix("") for p in (tmp_path / "storage").rglob("*.tf_model.index"))
    model.save_weights(str(tmp_path / "loaded.tf_model"), save_format="tf")
    theirs, ours = checkpoint(saved), checkpoint(tmp_path / "loaded.tf_model")
    assert ours.keys() == theirs.keys()
    assert sum("/optimizer/" in name for name in ours) > 10  # Adam's slots, restored too
    different = [name for name in ours if not np.array_equal(ours[name], theirs[name])]
    assert not different, different
    # Back to graph mode for the real training: no eager flag, no cached (eager) training function.
    assert not model.run_eagerly and model.train_function is None
    assert model.config["run_eagerly"] is False


def intents(model_file: Path) -> list[str]:
    from rasa.core.agent import Agent

    from deploy import rasa_fast_start

    assert rasa_patches.install(rasa_fast_start.PATCHES) == []  # as Rasa loads models here

    agent = Agent.load(str(model_file))

    async def parse() -> list[str]:
        return [(await agent.parse_message(m))["intent"]["name"] for m in MESSAGES]

    return asyncio.run(parse())


def test_a_finetune_with_new_words_fits_one_example_eagerly_and_trains_in_a_graph(
    project: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keras
    from rasa.utils.tensorflow.models import TransformerRasaModel

    root, base = project
    general = root / "bot/data/nlu/general.yml"
    text = general.read_text(encoding="utf-8")
    assert "    - alo\n" in text
    general.write_text(text.replace("    - alo\n", NEW_WORDS, 1), encoding="utf-8")

    assert rasa_patches.install(rasa_finetune.PATCHES) == []
    fits: list[tuple[str, bool, bool]] = []  # (model, eager, traced function cached) at each fit
    grown: list[str] = []
    fit, compile_and_fit = keras.Model.fit, TransformerRasaModel._compile_and_fit

    def spy_fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        fits.append((type(self).__name__, bool(self.run_eagerly), self.train_function is not None))
        return fit(self, *args, **kwargs)

    def spy_compile_and_fit(self: Any, data_example: Any) -> None:
        grown.append(type(self).__name__)
        compile_and_fit(self, data_example)

    monkeypatch.setattr(keras.Model, "fit", spy_fit)
    monkeypatch.setattr(TransformerRasaModel, "_compile_and_fit", spy_compile_and_fit)
    finetuned = train(root, tmp_path / "ours", "ours", finetune=base)
    monkeypatch.undo()  # the spies (Rasa's own load fits one example too)

    assert "DIET" in grown  # the new words grew DIET's sparse layers
    diet = [f for f in fits if f[0] == "DIET"]
    # load, then the grown layers: one example each, eagerly; then the real training, traced afresh
    assert diet == [("DIET", True, False), ("DIET", True, False), ("DIET", False, False)], fits
    # The finetuned model learnt the new examples.
    assert intents(finetuned) == EXPECTED
