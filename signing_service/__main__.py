"""`python -m signing_service --port 8800`: run the signing service."""

from __future__ import annotations

import argparse
import logging
import sys

from aiohttp import web

from common import log_setup, metrics

from .settings import ConfigError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m signing_service", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8800, help="TCP port (default 8800)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    try:
        log_setup.configure(args.log_level)  # LOG_FORMAT=text|json; every line carries the request id
    except log_setup.LogConfigError as e:
        print(f"signing service: configuration error: {e}", file=sys.stderr)
        return 2
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # font subsetting is chatty at INFO
    # aiohttp's access log would print query strings, i.e. link signatures: keep it off.
    try:
        settings = load_settings(port=args.port)
        metrics.token_from_env()  # METRICS_TOKEN is required in production
        from . import services  # noqa: F401 (reads and checks the time limits file: SERVICE_LIMITS_PATH)
    except (ConfigError, ValueError) as e:
        print(f"signing service: configuration error: {e}", file=sys.stderr)
        return 2
    from .http.app import create_app  # heavy imports (pyHanko, fpdf2) only once the configuration is valid

    web.run_app(create_app(settings), host=args.host, port=args.port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
