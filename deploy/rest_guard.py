"""Rasa's REST channel answers 400, not 500, to a body that is not a JSON object.

Rasa 3.6 reads `request.json.get("sender")`: a body such as `null`, `[]`, `123` or `"text"` raised
AttributeError and Sanic answered 500 (found by tests/fuzz). The channel is internal (nginx does
not expose it, deploy/nginx.conf.j2), but the connectors and the desk call it, and a 500 there
looks like a crash in the logs. `install()` is idempotent; deploy/windowed_tracker_store.py calls
it, as Rasa imports that module at start-up.
"""

from __future__ import annotations

from typing import Any

_installed = False


def check_body(body: Any) -> None:
    """Raise Sanic's 400 unless `body` is a JSON object whose sender and message are text."""
    from sanic.exceptions import InvalidUsage

    if not isinstance(body, dict):
        raise InvalidUsage("The body must be a JSON object with 'sender' and 'message'.")
    for key in ("sender", "message"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise InvalidUsage(f"'{key}' must be a string.")


def install() -> None:
    global _installed
    if _installed:
        return
    from rasa.core.channels.rest import RestInput
    from sanic.request import Request

    original = RestInput._extract_sender

    async def _extract_sender(self: RestInput, req: Request) -> str | None:
        check_body(req.json)  # first thing `receive` reads from the body
        return await original(self, req)

    RestInput._extract_sender = _extract_sender  # type: ignore[method-assign]
    _installed = True
