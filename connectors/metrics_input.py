"""Operators' view of the Rasa server: `GET /webhooks/metrics/` (Prometheus), `GET /webhooks/metrics/worker`
(which Sanic worker answered and the model it runs) and request ids in its logs.

Rasa has no metrics endpoint of its own; an input channel is the documented way to add routes to its
Sanic app, so this "channel" serves the bot's metrics (turns, reply latency and send errors counted by
the Zalo and Telegram channels) and receives no messages. Registered in credentials.yml as
`connectors.metrics_input.MetricsInput:`. METRICS_TOKEN protects it like every /metrics (required in
production: /webhooks/ is public). With several Rasa workers set PROMETHEUS_MULTIPROC_DIR.

`/worker` exists because Rasa's `PUT /model` swaps the model of the one worker that took the request,
and `/status` does not say which worker answered: the desk's model activation
(agent_desk/training/activation.py) asks it on fresh connections until every worker runs the new model.

Loading it also gives Rasa's log lines the request id and the LOG_FORMAT of the other processes.
"""

from __future__ import annotations

import os
from typing import Any

from rasa.core.channels.channel import InputChannel
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.utils import number_of_sanic_workers
from rasa.utils.endpoints import EndpointConfig
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from common import log_setup, metrics


class MetricsInput(InputChannel):
    def __init__(self, token: str | None) -> None:
        self.token = token

    @classmethod
    def name(cls) -> str:
        return "metrics"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> MetricsInput:
        # Rasa loads channels once logging is set up: a bad LOG_FORMAT or a missing METRICS_TOKEN in
        # production stops it here, with our message.
        log_setup.apply_to_root_handlers()
        return cls(metrics.token_from_env())

    def blueprint(self, on_new_message: Any) -> Blueprint:
        bp = Blueprint("metrics_endpoint", __name__)

        @bp.route("/", methods=["GET"])
        async def scrape(request: Request) -> HTTPResponse:
            if not metrics.token_ok(request.headers.get("authorization"), self.token):
                return response.json({"error": "unauthorized"}, status=401)
            return response.raw(metrics.exposition(), content_type=metrics.CONTENT_TYPE_LATEST)

        @bp.route("/worker", methods=["GET"])
        async def worker(request: Request) -> HTTPResponse:
            if not metrics.token_ok(request.headers.get("authorization"), self.token):
                return response.json({"error": "unauthorized"}, status=401)
            agent = getattr(request.app.ctx, "agent", None)
            processor = getattr(agent, "processor", None) if agent is not None else None
            return response.json(
                {
                    "pid": os.getpid(),
                    "workers": sanic_workers(getattr(agent, "lock_store", None)),
                    "model_file": getattr(processor, "model_filename", None),
                }
            )

        return bp


def sanic_workers(lock_store: object) -> int:
    """The number of workers Rasa started: SANIC_WORKERS, unless the lock store cannot be shared.
    Rasa decides on the endpoints.yml entry (rasa.core.run.serve_application); a worker only has the
    lock store it built, so an entry of the same kind stands for it (custom stores such as
    deploy/sqlite_lock_store.py are multi-worker to Rasa, the in-memory one is not)."""
    if lock_store is None or isinstance(lock_store, InMemoryLockStore):
        return number_of_sanic_workers(None)
    return number_of_sanic_workers(EndpointConfig(type="shared"))
