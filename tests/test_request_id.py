"""Request ids (common/request_id.py) and the log lines that carry them (common/log_setup.py)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from common import log_setup, request_id
from signing_service.http.app import create_app
from tests.test_metrics_http import AUTH, CODE, signing_settings


@pytest.mark.parametrize("given", ["abcdef12", "6f1c2a9e-1b2c-4d5e-8f90-123456789abc", "zalo.evt:1-2_3"])
def test_a_safe_incoming_id_is_kept(given: str) -> None:
    assert request_id.accept(given) == given


@pytest.mark.parametrize(
    "given", [None, "", "short", "x" * 65, "a b c d e f", "ab\ncdefgh", "abcdefgh\n", "mã-yêu-cầu-123", 42]
)
def test_anything_else_gets_a_new_id(given: Any) -> None:
    made = request_id.accept(given)
    assert made != given and request_id.safe(made) == made


def test_ids_from_rasa_metadata_and_trackers() -> None:
    assert request_id.from_metadata({"request_id": "abcdef123"}) == "abcdef123"
    assert request_id.from_metadata({"request_id": "no good"}) is None
    assert request_id.from_metadata(None) is None
    tracker = {"latest_message": {"metadata": {"request_id": "abcdef123"}}}
    assert request_id.from_tracker(tracker) == "abcdef123"
    assert request_id.from_tracker({"latest_message": None}) is None


async def test_tasks_started_for_a_message_keep_its_id() -> None:
    async def later() -> str | None:
        await asyncio.sleep(0)
        return request_id.current()

    token = request_id.bind("abcdef123")
    try:
        task = asyncio.create_task(later())
        assert request_id.headers() == {request_id.HEADER: "abcdef123"}
    finally:
        request_id.unbind(token)
    assert await task == "abcdef123"
    assert request_id.current() is None and request_id.headers() == {}


def test_log_format_is_validated() -> None:
    assert log_setup.log_format({}) == "text"
    assert log_setup.log_format({"LOG_FORMAT": " JSON "}) == "json"
    with pytest.raises(log_setup.LogConfigError, match="LOG_FORMAT='yaml': use one of text, json"):
        log_setup.log_format({"LOG_FORMAT": "yaml"})


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Root log lines in the JSON format (next to pytest's own handlers, which stay)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(log_setup.formatter("json"))
    log_setup.install_record_factory()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def test_json_lines_parse_and_carry_the_id(json_lines: io.StringIO) -> None:
    log = logging.getLogger("tests.request_id")
    log.info("outside")
    token = request_id.bind("abcdef123")
    try:
        log.warning("inside %s", "a call")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    finally:
        request_id.unbind(token)
    entries = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    assert [(e["request_id"], e["message"], e["level"]) for e in entries] == [
        ("-", "outside", "INFO"),
        ("abcdef123", "inside a call", "WARNING"),
        ("abcdef123", "failed", "ERROR"),
    ]
    assert "ValueError: boom" in entries[2]["exc"] and entries[0]["logger"] == "tests.request_id"


def test_the_text_format_shows_the_id() -> None:
    log_setup.install_record_factory()
    record = logging.getLogger("x").makeRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    assert "x [-]: hello" in log_setup.formatter("text").format(record)


async def test_the_signing_service_logs_the_callers_id(
    aiohttp_client: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory, json_lines: io.StringIO
) -> None:
    client = await aiohttp_client(create_app(signing_settings(tmp_path_factory.mktemp("rid-var"))))
    async with client.get(f"/v1/requests/{CODE}", headers={**AUTH, request_id.HEADER: "flow-id-0001"}) as r:
        assert r.status == 200
    access = [
        e
        for e in map(json.loads, json_lines.getvalue().splitlines())
        if e["logger"] == "signing_service.access" and "/v1/requests/" in e["message"]
    ]
    assert [e["request_id"] for e in access] == ["flow-id-0001"]
    assert CODE not in access[0]["message"]
