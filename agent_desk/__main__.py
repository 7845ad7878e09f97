"""`python -m agent_desk --port N`: run the agent desk."""

from __future__ import annotations

import argparse
import logging
import sys

from aiohttp import web

from agent_desk.app import create_app
from agent_desk.config import ConfigError, Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent_desk", description="Agent desk web application")
    parser.add_argument("--port", type=int, help="listen port (default: DESK_PORT or 8900)")
    parser.add_argument("--host", help="listen address (default: DESK_HOST or 127.0.0.1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
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
    web.run_app(create_app(settings), host=host, port=port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
