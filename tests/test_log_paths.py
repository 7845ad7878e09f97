"""common/log_paths.py: what a client's log line may show of a signing-service path."""

from __future__ import annotations

import pytest

from common.log_paths import loggable_path


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("/v1/requests/PC05TK0000123/documents", "/v1/requests/…/documents"),
        ("/v1/requests/pc05tk0000123", "/v1/requests/…"),
        ("/v1/requests/PC05TK%200000123/notifications", "/v1/requests/…/notifications"),
        ("/v1/signing-sessions/3q2-Xb_Lk9sPqv1c7Zr0aQ/verify", "/v1/signing-sessions/…/verify"),
        ("/v1/verifications/abcdefghijklmnopqrstuvwxyz/verify", "/v1/verifications/…/verify"),
        ("/v1/candidates/Zk3_9aa", "/v1/candidates/…"),
        ("/v1/notifications?chat_channel=telegram&chat_user=123", "/v1/notifications"),
        ("/api/conversations/42/messages", "/api/conversations/42/messages"),
        ("/v1/requests/0912345678", "/v1/requests/…"),  # ten digits: a phone number, not an id
        ("/v1/units", "/v1/units"),
    ],
)
def test_only_route_words_and_short_numbers_are_kept(path: str, shown: str) -> None:
    assert loggable_path(path) == shown
