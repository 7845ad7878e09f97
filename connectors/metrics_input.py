"""Operators' view of the Rasa server: `GET /webhooks/metrics/` (Prometheus) and request ids in its logs.

Rasa has no metrics endpoint of its own; an input channel is the documented way to add routes to its
Sanic app, so this "channel" serves the bot's metrics (turns, reply latency and send errors counted by
the Zalo and Telegram channels) and receives no messages. Registered in credentials.yml as
`connectors.metrics_input.MetricsInput:`. METRICS_TOKEN protects it like every /metrics (required in
production: /webhooks/ is public). With several Rasa workers set PROMETHEUS_MULTIPROC_DIR.

Loading it also gives Rasa's log lines the request id and the LOG_FORMAT of the other processes.
"""

from __future__ import annotations

from typing import Any

from rasa.core.channels.channel import InputChannel
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

        return bp
