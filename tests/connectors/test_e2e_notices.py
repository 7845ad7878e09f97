"""Notices end to end (issue 16): real Rasa, action server, signing service and notifier; fake
Telegram, Zalo and ZNS APIs. A Telegram customer verifies, says yes to the notices, staff move the
request, the notice arrives within seconds, and tapping its button continues the conversation; a
Zalo customer who has not written for days gets the ZNS template on the registered phone."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest

from devstack import processes
from tests.connectors.e2e_support import ChannelStack, TelegramCustomer, http, latest_otp
from tests.connectors.test_e2e_channels import verify_in_one_tap

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]
CODE = "PC05TK0000123"
ZNS_TEMPLATE = "318822"


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, shared_channel_stack: ChannelStack
) -> Iterator[ChannelStack]:
    # The session's Rasa; the signing service (quiet hours) and the notifier with this module's settings.
    cs = shared_channel_stack.fresh_signing(
        tmp_path_factory.mktemp("notices"),
        {
            "NOTIFY_QUIET_HOURS": "",
            "NOTIFY_POLL_MS": "200",
            "ZNS_API_BASE_URL": shared_channel_stack.zalo.url,
            "ZNS_TEMPLATES": f"step_changed:{ZNS_TEMPLATE}",
        },
    )
    try:
        s = cs.stack
        s.start(processes.notifier(s.ports, s.env, s.root / "log"), 60)
        yield cs
    finally:
        cs.stop_extra()


def staff(cs: ChannelStack, method: str, path: str, body: dict | None = None, **headers: str) -> dict:
    status, raw = http(
        method,
        cs.stack.signing_url + path,
        json.dumps(body).encode() if body is not None else None,
        {"Authorization": f"Bearer {cs.stack.token}", "Content-Type": "application/json", **headers},
    )
    assert status < 300, raw
    return dict(json.loads(raw))


def button(replies: list, title_part: str) -> dict:
    for r in replies:
        for b in r.buttons:
            if title_part in b.get("title", ""):
                return dict(b)
    raise AssertionError(f"no button {title_part!r} in {[r.buttons for r in replies]}")


def test_a_telegram_customer_subscribes_and_the_next_step_reaches_them(stack: ChannelStack) -> None:
    customer = TelegramCustomer(stack)
    customer.say(f"/start {CODE}")
    customer.replies()
    customer.say("xem giấy tờ")
    after = verify_in_one_tap(customer)
    offer = button(after, "Nhận thông báo")  # asked once, after the verification
    customer.tap(offer)
    on = customer.replies()
    assert any("đã bật thông báo" in r.text for r in on), customer.transcript

    moved = staff(stack, "POST", f"/v1/requests/{CODE}/advance")
    t0 = time.monotonic()
    notice = customer.replies(timeout=30, quiet=0.5)
    waited = time.monotonic() - t0
    assert len(notice) == 1 and moved["current_step"] in notice[0].text, customer.transcript
    assert waited < 10, waited  # "within seconds" (poll 200 ms)
    assert [b["title"] for b in notice[0].buttons] == ["Xem tiến độ", "Dừng thông báo"]

    customer.tap(button(notice, "Xem tiến độ"))  # the reply continues about that request
    status = customer.replies()
    assert any(moved["current_step"] in r.text for r in status), customer.transcript

    customer.say("đừng gửi thông báo nữa nhé")
    off = customer.replies()
    assert any("đã dừng thông báo" in r.text for r in off), customer.transcript
    listed = staff(stack, "GET", f"/v1/notifications?chat_channel=telegram&chat_user={customer.sender_id}")
    assert [(n["kind"], n["state"], n["via"]) for n in listed["notices"]] == [
        ("step_changed", "sent", "telegram")
    ]


def test_a_zalo_customer_outside_the_window_gets_the_zns_template(stack: ChannelStack) -> None:
    user = "zalo:6142999000111"  # verified and subscribed, but has not written to the OA since
    who = {"X-Chat-Channel": "zalo", "X-Chat-User": user}
    since = time.time()
    challenge = staff(stack, "POST", "/v1/verifications", {"request_code": CODE, "channel": "sms"}, **who)
    code = latest_otp(stack.stack.outbox, since)
    staff(stack, "POST", f"/v1/verifications/{challenge['challenge_id']}/verify", {"otp": code}, **who)
    staff(stack, "POST", f"/v1/requests/{CODE}/notifications", **who)
    before = len(stack.zalo.zns_sent)
    moved = staff(stack, "POST", f"/v1/requests/{CODE}/advance")
    deadline = time.monotonic() + 30
    while len(stack.zalo.zns_sent) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    zns = stack.zalo.zns_sent[before:]
    assert len(zns) == 1, zns
    assert zns[0].template_id == ZNS_TEMPLATE and re.fullmatch(r"84\d{9,10}", zns[0].phone)
    assert zns[0].template_data["code"] == CODE and zns[0].template_data["step"] == moved["current_step"]
    assert stack.zalo.calls_to("6142999000111") == []  # no customer-service message outside the window
