"""Fine-tune without tracing two throw-away training steps (the trainers' workbench; issue 20).

To fine-tune, Rasa 3.6 loads the previous DIET / ResponseSelector with `RasaModel.load(...,
finetune_mode=True)`, which builds the weights by *fitting one example* and then overwrites them
with the saved ones; when the new data brings new words it grows the sparse layers and fits one
example again (`TransformerRasaModel._compile_and_fit`). Each of those fits traces Keras' whole
training step (forward pass, CRF, gradients, Adam) as a TensorFlow graph, then the real training
traces its own: on 2 cores the two throw-away traces were ~110 s of a 185 s DIET fine-tune of this
project (76 s with this patch).

Here those two one-example fits run eagerly: the same Python code, the same layers and optimizer
slots created, the same one Adam step in `_compile_and_fit`, without building a graph. Afterwards
the model's own `run_eagerly` is back and its cached training function dropped, so the real
training traces once, as before. What the load's fit computed is overwritten by the saved weights
either way (tests/deploy/test_rasa_finetune.py compares every variable); the one step of
`_compile_and_fit` draws its dropout masks from TensorFlow's eager random stream instead of the
graph's, as any other run would.

Registered like the other patches (deploy/rasa_patches.py) and installed by the processes that
train (`python -m deploy.rasa_main train`, trainer/nlumodel.py); nothing happens on import.
"""

from __future__ import annotations

import inspect
from typing import Any

from deploy.rasa_patches import Patch
from deploy.source_pins import pins, replace


def _after_an_eager_fit(model: Any, config: dict[str, Any], run_eagerly: Any) -> None:
    """Give the model back the configuration it was built with, and no cached training function:
    the next `fit` traces one for the real training (Keras caches the eager one otherwise)."""
    model.config = config
    model.run_eagerly = run_eagerly
    model.train_function = None


def _eager_one_example_fits() -> None:
    from rasa.utils.tensorflow.constants import RUN_EAGERLY
    from rasa.utils.tensorflow.models import RasaModel, TransformerRasaModel

    original_load = inspect.getattr_static(RasaModel, "load").__func__
    original_compile_and_fit = TransformerRasaModel._compile_and_fit

    def load(
        cls: type[RasaModel],
        model_file_name: str,
        model_data_example: Any,
        predict_data_example: Any = None,
        finetune_mode: bool = False,
        *args: Any,
        **kwargs: Any,
    ) -> RasaModel:
        config = kwargs.get("config", {})
        run_eagerly = config.get(RUN_EAGERLY)
        if not finetune_mode or run_eagerly:
            return original_load(  # type: ignore[no-any-return]
                cls, model_file_name, model_data_example, predict_data_example, finetune_mode, *args, **kwargs
            )
        # Rasa's load compiles with the config's RUN_EAGERLY before its one-example fit.
        eager = {**kwargs, "config": {**config, RUN_EAGERLY: True}}
        model = original_load(
            cls, model_file_name, model_data_example, predict_data_example, True, *args, **eager
        )
        _after_an_eager_fit(model, config, run_eagerly)
        return model  # type: ignore[no-any-return]

    def _compile_and_fit(self: TransformerRasaModel, data_example: Any) -> None:
        config = self.config
        run_eagerly = config.get(RUN_EAGERLY)
        if run_eagerly:
            original_compile_and_fit(self, data_example)
            return
        self.config = {**config, RUN_EAGERLY: True}
        try:
            original_compile_and_fit(self, data_example)
        finally:
            _after_an_eager_fit(self, config, run_eagerly)

    replace(RasaModel, "load", load)
    replace(TransformerRasaModel, "_compile_and_fit", _compile_and_fit)


# As written for Rasa 3.6.21 and Keras 2.12 (tests/deploy/test_rasa_patches.py checks every pin).
PATCHES = (
    Patch(
        "rasa_finetune.eager_one_example_fits",
        _eager_one_example_fits,
        pins(
            (
                "rasa.utils.tensorflow.models:RasaModel.load",
                "84fd81c0fdd01a8048de2d9b5b3022bdbf1e155f7b4d67737eb51ecb0787d292",
            ),
            (
                "rasa.utils.tensorflow.models:TransformerRasaModel._compile_and_fit",
                "4455e94f9cd8e79b610bd968a8e6d1ad5ef025b8a0a8f44d730db6837503f01b",
            ),
            (
                "rasa.utils.tensorflow.models:TransformerRasaModel.__init__",
                "94b42370cdff3cc001898dee255d2383caf83b119909b3eb64e12df7881aacf0",
            ),
            # The cached training function that _after_an_eager_fit drops.
            (
                "keras.engine.training:Model.make_train_function",
                "555c06650c7934218cfa62de93eaad48e929b53807685eab02303cd7ef852f03",
            ),
        ),
    ),
)
