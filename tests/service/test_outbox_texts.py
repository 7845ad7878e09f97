"""What the SMS and e-mails say about the chat a customer used: its customer name ("Zalo", "trang
web"), never the technical channel name ("rest")."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from signing_service.outbox import signed_files_email, signed_notice, verification_message

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=timezone.utc)
CODE = "PC05TK0000123"


@pytest.mark.parametrize(
    ("chat", "label"),
    [
        ("zalo", "Zalo"),
        ("telegram", "Telegram"),
        ("rest", "trang web"),
        ("web", "trang web"),
        ("desk", "tổng đài"),
    ],
)
def test_texts_name_the_chat_as_customers_know_it(chat: str, label: str) -> None:
    notice = signed_notice("sms", "0905123456", CODE, ["Hợp đồng mua bán điện"], chat, NOW)
    mail = signed_files_email(
        "a@example.com", "Nguyễn Văn An", CODE, ["Hợp đồng"], chat, NOW, [], "https://x/verify"
    )
    view = verification_message("sms", "0905123456", "123456", CODE, NOW, chat_channel=chat)
    assert f"qua {label}: Hợp đồng mua bán điện" in notice.text
    assert f"qua {label}:\n- Hợp đồng" in mail.text
    assert f"hồ sơ yêu cầu {CODE} trên {label} là 123456" in view.text
    for text in (notice.text, mail.text, view.text):
        assert "qua rest" not in text and "trên rest" not in text and "Zalo/Telegram" not in text
