"""`python -m agent_desk --port N`: run the agent desk."""

from __future__ import annotations

import argparse
import logging
import sys

from aiohttp import web

from agent_desk.app import create_app
from agent_desk.config import ConfigError, Settings
from agent_desk.text_files import TextFileError
from common import log_setup, metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent_desk", description="Agent desk web application")
    parser.add_argument("--port", type=int, help="listen port (default: DESK_PORT or 8900)")
    parser.add_argument("--host", help="listen address (default: DESK_HOST or 127.0.0.1)")
    args = parser.parse_args(argv)
    try:
        log_setup.configure(logging.INFO)  # LOG_FORMAT=text|json; every line carries the request id
        settings = Settings.from_env()
        metrics.token_from_env()  # METRICS_TOKEN is required in production
    except (ConfigError, log_setup.LogConfigError, metrics.MetricsConfigError) as exc:
        print(f"agent desk: configuration error: {exc}", file=sys.stderr)
        return 2
    port = args.port or settings.port
    host = args.host or settings.host
    logging.getLogger("agent_desk").info(
        "agent desk on http://%s:%d (rasa %s, events %s)",
        host,
        port,
        settings.rasa_url,
        settings.rabbitmq_url and "rabbitmq" or settings.rasa_events_db,
    )
    try:
        app = create_app(settings)
    except TextFileError as exc:  # agent_desk/texts/*.yml
        print(f"agent desk: texts error: {exc}", file=sys.stderr)
        return 2
    web.run_app(app, host=host, port=port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
