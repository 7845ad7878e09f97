"""Load Rasa's TensorFlow models without a training step (start-up time; issue 20).

Rasa 3.6 `RasaModel.load` builds a DIET / ResponseSelector model by *training it on one example*
(`model.fit`), only so that Keras creates its weights, then overwrites them with the saved ones
and traces the prediction function on one example. Tracing the training step (forward pass,
loss, gradients, Adam update) is the most expensive part of loading each model, and every Sanic
worker pays it for each model (bench/bench_startup.py has the figures).

Here the weights are created by one *eager* prediction on the example Rasa keeps for that
purpose (no tracing; the same layers are built with the same shapes), the saved weights are
loaded over them, and the prediction function is traced once, after loading, as Rasa does.
The optimizer's slots, which only training creates, stay unrestored (`expect_partial`): a loaded
model used for prediction never reads them. Fine-tuning (`rasa train --finetune`), a model run
eagerly, or a load without a prediction example take Rasa's own path unchanged.

Registered like the other patches (deploy/rasa_patches.py): `PATCHES` below pins `RasaModel.load`,
which it replaces, and the three functions whose behaviour it relies on (the eager path of
`_rasa_predict`, and the label embeddings DIET and DIET2DIET cache on their first prediction);
the installer refuses it when any of them changed. Nothing happens on import.
"""

from __future__ import annotations

import inspect
from typing import Any

from deploy.rasa_patches import Patch
from deploy.source_pins import SourcePin, replace


def _load_without_training_step() -> None:
    import tensorflow as tf
    from rasa.utils.tensorflow.constants import LEARNING_RATE, RUN_EAGERLY
    from rasa.utils.tensorflow.models import RasaModel

    original = inspect.getattr_static(RasaModel, "load").__func__

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
        if finetune_mode or not predict_data_example or run_eagerly:
            return original(  # type: ignore[no-any-return]
                cls, model_file_name, model_data_example, predict_data_example, finetune_mode, *args, **kwargs
            )
        model = cls(*args, **kwargs)
        # Compiled as Rasa does (the optimizer is part of the checkpoint's structure).
        model.compile(
            optimizer=tf.keras.optimizers.Adam(config.get(LEARNING_RATE, 0.001)), run_eagerly=run_eagerly
        )
        # One eager prediction creates the weights (random values); nothing is traced.
        model.run_eagerly = True
        model.run_inference(predict_data_example)
        model.run_eagerly = run_eagerly
        model.load_weights(model_file_name).expect_partial()  # optimizer slots: training only
        # What the eager pass derived from the random weights (the label embeddings) is dropped,
        # and the prediction function traced on the loaded weights, as Rasa's own load does.
        model.prepared_for_prediction = False
        if hasattr(model, "all_labels_embed"):
            model.all_labels_embed = None
        model._tf_predict_step = None
        model.__dict__.pop("_cskh_concrete", None)  # deploy/rasa_speedups.py's cached function
        model.run_inference(predict_data_example)
        return model

    replace(RasaModel, "load", load)


# As written for Rasa 3.6.21 (tests/deploy/test_rasa_patches.py checks every pin).
PATCHES = (
    Patch(
        "rasa_fast_start.load_without_training_step",
        _load_without_training_step,
        (
            SourcePin(
                "rasa.utils.tensorflow.models:RasaModel.load",
                "84fd81c0fdd01a8048de2d9b5b3022bdbf1e155f7b4d67737eb51ecb0787d292",
            ),
            SourcePin(
                "rasa.utils.tensorflow.models:RasaModel._rasa_predict",
                "7f745b0f9cb647c9df9e5b04b318a7b93709daf9460bad4373970c6cf9f04d8f",
            ),
            SourcePin(
                "rasa.nlu.classifiers.diet_classifier:DIET.prepare_for_predict",
                "1188c112792151e136febedc624208009641ea3b2666e6ebac5148c4c13b7ac0",
            ),
            SourcePin(
                "rasa.nlu.selectors.response_selector:DIET2DIET.batch_predict",
                "77c85ee92fc43d3d364e59a3f2a6b87fdbe0c32db166fc360ebe699b8463409e",
            ),
        ),
    ),
)
