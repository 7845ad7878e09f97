"""The actions' signing-service client logs a refused call without what its path carries (request
codes, signing-session and verification ids, candidate refs): docs/security.md, "Logs"."""

from __future__ import annotations

import logging

import pytest

from bot.actions.signing_api import ApiError, ChatUser, get_api
from tests.actions.conftest import Service
from tests.actions.test_verification import stranger

CODE = "PC05TK0000123"
UNKNOWN = "PC05TK9999991"
SESSION = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


async def test_refused_calls_are_logged_without_codes_or_ids(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.actions.signing_api")
    who = ChatUser("telegram", stranger())
    api = get_api()
    with pytest.raises(ApiError):  # 403 not_verified
        await api.documents(CODE, who)
    with pytest.raises(ApiError):  # 404
        await api.request(UNKNOWN, "conv-logs")
    with pytest.raises(ApiError):  # 404 session_not_found
        await api.verify(SESSION, "123456")
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.actions.signing_api"]
    assert any("/v1/requests/…/documents -> 403" in line for line in lines), lines
    assert any("/v1/signing-sessions/…/verify -> 404" in line for line in lines), lines
    for secret in (CODE, UNKNOWN, SESSION, SESSION[:8]):
        assert not any(secret in line for line in lines), (secret, lines)
