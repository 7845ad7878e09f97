"""The base of the pipeline's post-processing components: no configuration, nothing to train."""

from __future__ import annotations

from typing import Any, Dict, TypeVar

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage

T = TypeVar("T", bound="StatelessComponent")


class StatelessComponent(GraphComponent):
    """A graph component that only implements `process(messages)`."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {}

    @classmethod
    def create(
        cls: type[T],
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> T:
        return cls()
