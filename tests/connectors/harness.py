"""Serve one channel's blueprint on a real Sanic server inside the test's event loop.

Webhook-level tests (signatures, status codes, dedupe, background processing) need the HTTP
layer but not a trained model; the handler Rasa would pass in is replaced by a recorder. The
end-to-end tests (test_journey_*, test_*_rasa) run the real Rasa server instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Sanic

from devstack.processes import free_port


class Recorder:
    """Stands in for Rasa's message handler: records messages, optionally answers them."""

    def __init__(self, reply: dict[str, Any] | None = None, delay: float = 0.0) -> None:
        self.messages: list[UserMessage] = []
        self.reply = reply
        self.delay = delay

    async def __call__(self, message: UserMessage) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.messages.append(message)
        if self.reply is not None:
            await message.output_channel.send_response(message.sender_id, dict(self.reply))

    async def wait_for(self, n: int, timeout: float = 10.0) -> list[UserMessage]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.messages) < n:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"expected {n} messages, got {len(self.messages)}")
            await asyncio.sleep(0.01)
        return self.messages


@contextlib.asynccontextmanager
async def serve(
    channel: InputChannel, handler: Recorder, app_ctx: dict[str, Any] | None = None
) -> AsyncIterator[str]:
    """Yields the base URL, e.g. http://127.0.0.1:PORT/webhooks/zalo."""
    Sanic.test_mode = True
    app = Sanic(f"t{uuid.uuid4().hex[:10]}")
    for k, v in (app_ctx or {}).items():
        setattr(app.ctx, k, v)
    prefix = f"/webhooks/{channel.name()}"
    app.blueprint(channel.blueprint(handler), url_prefix=prefix)
    port = free_port()
    server = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
    )
    assert server is not None
    await server.startup()
    await server.start_serving()
    try:
        yield f"http://127.0.0.1:{port}{prefix}"
    finally:
        runner = getattr(channel, "runner", None)  # the metrics channel has none
        if runner is not None:
            await runner.drain()
        server.close()
        await server.wait_closed()
