"""Bounded, typed reading of request input: anything unexpected becomes a 400 with a stable code."""

from __future__ import annotations

import json
from collections.abc import Set as AbstractSet
from typing import Any

from aiohttp import web

from common.request_code import normalize_request_code

from ..errors import ApiError

MAX_BODY = 16 * 1024


async def json_body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, "payload_too_large")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise ApiError(413, "payload_too_large")
    try:
        body = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # RecursionError: [[[[...]]]]
        raise ApiError(400, "invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", field=None)
    return body


def field_error(name: str, expected: str) -> ApiError:
    return ApiError(400, "invalid_field", f"Trường '{name}' không hợp lệ ({expected}).", field=name)


def opt_str(body: dict[str, Any], name: str, max_len: int, default: str | None = None) -> str | None:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str) or len(value) > max_len:
        raise field_error(name, f"chuỗi tối đa {max_len} ký tự")
    return value


def req_int(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise field_error(name, "số nguyên dương")
    return value


def int_list(body: dict[str, Any], name: str, max_items: int) -> list[int]:
    value = body.get(name)
    if not isinstance(value, list) or len(value) > max_items:
        raise field_error(name, f"danh sách tối đa {max_items} số")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 0 < item < 2**31:
            raise field_error(name, "danh sách số nguyên dương")
        if item not in out:
            out.append(item)
    return out


def choice(body: dict[str, Any], name: str, allowed: AbstractSet[str], default: str | None = None) -> str:
    value = body.get(name, default)
    if value not in allowed:
        raise field_error(name, " | ".join(sorted(allowed)))
    return str(value)


def request_code(raw: str) -> str:
    code = normalize_request_code(raw)
    if code is None:
        raise ApiError(400, "invalid_request_code")
    return code


def path_int(request: web.Request, name: str, not_found: str) -> int:
    raw = request.match_info[name]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise ApiError(404, not_found)
    return int(raw)
