"""`python -m bot.action_server --port 5055`: rasa_sdk's action server, answering Rasa only.

rasa_sdk runs any action for anyone who can reach its port (and listens on 0.0.0.0). This launcher
starts the same Sanic app (`rasa_sdk.endpoint.create_app`) on `--host` (default 127.0.0.1) and
refuses every request but `GET /health` that does not carry the shared secret Rasa sends on each
action call (endpoints.yml: `Authorization: Bearer ${ACTION_SERVER_TOKEN}`): 401, JSON body.

A header, not Rasa's `token:` query parameter: query strings end up in access logs.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import BaseHTTPResponse, HTTPResponse

from common.chat_identity import CHAT_CHANNELS
from common.production import AppEnvError, is_production, refuse_development_defaults

logger = logging.getLogger("bot.action_server")  # not __main__ under `python -m`

DEV_ACTION_TOKEN = "dev-action-token"  # noqa: S105 - development default, refused in production
TOKEN_ENV = "ACTION_SERVER_TOKEN"  # noqa: S105 - the variable's name, not a secret
# Health checks (devstack, nginx, orchestrators) carry no secret; /metrics checks METRICS_TOKEN itself.
OPEN_PATHS = frozenset({"/health", "/metrics"})


class ConfigError(RuntimeError):
    """ACTION_SERVER_TOKEN is missing or unsafe; the message says why."""


@dataclass(frozen=True)
class ActionServerSettings:
    token: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ActionServerSettings:
        env = os.environ if env is None else env
        try:
            production = is_production(env)
        except AppEnvError as exc:
            raise ConfigError(str(exc)) from None
        token = env.get(TOKEN_ENV, DEV_ACTION_TOKEN)
        if not token.strip():
            raise ConfigError(f"{TOKEN_ENV} must not be empty")
        if production:
            refuse_development_defaults(
                {TOKEN_ENV: token == DEV_ACTION_TOKEN},
                ConfigError,
                "APP_ENV=production: set {names} (the development token is refused)",
            )
        return cls(token=token)


def _presented_token(request: Request) -> str | None:
    scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def require_token(app: Sanic, token: str) -> None:
    """Answer 401 to every request but OPEN_PATHS without `Authorization: Bearer <token>`."""
    expected = token.encode()

    async def check_token(request: Request) -> HTTPResponse | None:
        if request.path in OPEN_PATHS:
            return None
        presented = _presented_token(request)
        if presented is not None and hmac.compare_digest(presented.encode(), expected):
            return None
        # The path only (no query string) and never the presented value: a log must not hold secrets.
        logger.warning(
            "refused %s %s from %s: %s",
            request.method,
            request.path,
            request.ip,
            "no bearer token" if presented is None else "wrong token",
        )
        return response.json(
            {"error": "unauthorized", "detail": f"send Authorization: Bearer <{TOKEN_ENV}>"},
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    app.register_middleware(check_token, "request")

    async def check_token_first(app: Sanic, _loop: object) -> None:
        # sanic_cors puts its own request middleware, which answers OPTIONS by itself, first in the
        # chain when the server starts (its listener runs before this one): the check goes before it.
        app.request_middleware.remove(check_token)
        app.request_middleware.appendleft(check_token)

    app.register_listener(check_token_first, "before_server_start")


KNOWN_CHANNELS = CHAT_CHANNELS | {"cmdline"}  # metric labels stay bounded


def follow_requests(app: Sanic, metrics_token: str | None) -> None:
    """Bind the customer message's request id (tracker metadata, set by the channel) for the call, so
    the action's log lines and its calls to the signing service and the desk carry it; count calls
    and NLU fallbacks; serve GET /metrics (METRICS_TOKEN, not the action token)."""
    from common import metrics, request_id

    async def bind_request_id(request: Request) -> None:
        if request.path != "/webhook":
            return
        try:
            body = request.json if request.method == "POST" else None
        except Exception:  # not JSON: rasa_sdk's handler answers that call; it just gets a new id
            body = None
        tracker = body.get("tracker") if isinstance(body, dict) else None
        request.ctx.request_id = request_id.bind(request_id.from_tracker(tracker) or request_id.new_id())
        action = body.get("next_action") if isinstance(body, dict) else None
        logger.info("action %s", action if isinstance(action, str) else "?")
        if action == "action_nlu_fallback" and isinstance(tracker, dict):
            channel = tracker.get("latest_input_channel")
            metrics.NLU_FALLBACKS.labels(channel if channel in KNOWN_CHANNELS else "other").inc()

    async def count_call(request: Request, resp: BaseHTTPResponse) -> None:
        if request.path == "/webhook":
            metrics.ACTION_CALLS.labels(str(resp.status)).inc()
        token = getattr(request.ctx, "request_id", None)
        if token is not None:  # a keep-alive connection serves its next calls in the same task
            with contextlib.suppress(ValueError):  # bound in another context: nothing to undo here
                request_id.unbind(token)

    async def metrics_endpoint(request: Request) -> HTTPResponse:
        if not metrics.token_ok(request.headers.get("authorization"), metrics_token):
            return response.json({"error": "unauthorized"}, status=401)
        return response.raw(metrics.exposition(), content_type=metrics.CONTENT_TYPE_LATEST)

    app.register_middleware(bind_request_id, "request")
    app.register_middleware(count_call, "response")
    app.add_route(metrics_endpoint, metrics.PATH, methods=["GET"])


def create_app(
    actions: str,
    settings: ActionServerSettings,
    cors: list[str] | None = None,
    metrics_token: str | None | bool = True,
) -> Sanic:
    """`metrics_token=True` reads METRICS_TOKEN (required in production); None leaves /metrics open."""
    from rasa_sdk.endpoint import create_app as sdk_create_app

    from common import metrics

    # rasa_sdk's create_app defaults to CORS "*"; its CLI passes None (no browser origin): so do we.
    app = sdk_create_app(actions, cors_origins=cors or None)
    require_token(app, settings.token)
    follow_requests(app, metrics.token_from_env() if metrics_token is True else metrics_token or None)
    return app


def main(argv: list[str] | None = None) -> int:
    from rasa_sdk import utils
    from rasa_sdk.constants import APPLICATION_ROOT_LOGGER_NAME
    from rasa_sdk.endpoint import create_argument_parser, create_ssl_context
    from rasa_sdk.plugin import plugin_manager

    parser: argparse.ArgumentParser = create_argument_parser()
    parser.prog = "python -m bot.action_server"
    parser.description = __doc__.splitlines()[0]
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.set_defaults(actions="bot.actions")
    args = parser.parse_args(argv)

    logging.getLogger("matplotlib").setLevel(logging.WARN)
    utils.configure_colored_logging(args.loglevel)
    utils.configure_file_logging(
        logging.getLogger(APPLICATION_ROOT_LOGGER_NAME),
        args.log_file,
        args.loglevel,
        args.logging_config_file,
    )
    utils.update_sanic_log_level()
    from common import log_setup, metrics

    try:
        settings = ActionServerSettings.from_env()
        log_setup.apply_to_root_handlers()  # request ids in every line; LOG_FORMAT=json
        metrics_token = metrics.token_from_env()
    except (ConfigError, ValueError) as e:
        print(f"action server: configuration error: {e}", file=sys.stderr)
        return 2

    app = create_app(args.actions, settings, args.cors, metrics_token)
    plugin_manager().hook.attach_sanic_app_extensions(app=app)  # as rasa_sdk.endpoint.run does
    ssl_context = create_ssl_context(args.ssl_certificate, args.ssl_keyfile, args.ssl_password)
    logger.info(
        "action server on %s://%s:%d (calls need %s)",
        "https" if ssl_context else "http",
        args.host,
        args.port,
        TOKEN_ENV,
    )
    app.run(args.host, args.port, ssl=ssl_context, workers=utils.number_of_sanic_workers())
    return 0


if __name__ == "__main__":
    sys.exit(main())
