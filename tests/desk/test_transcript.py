"""Rendering helpers: Rasa events to messages, queue previews, safe links."""

from __future__ import annotations

from agent_desk.filters import duration, linkify
from agent_desk.transcript import message_from_event, messages, preview


def test_links_are_escaped_and_only_http():
    html = str(linkify('xem <b>tại</b> https://cskh.cpc.vn/a?x=1&y="2" hoặc javascript:alert(1).'))
    assert "<b>" not in html and "&lt;b&gt;" in html
    assert '<a href="https://cskh.cpc.vn/a?x=1&amp;y=&#34;2&#34;"' not in html  # quote ends the URL
    assert '<a href="https://cskh.cpc.vn/a?x=1&amp;y="' in html
    assert "javascript:" in html and 'href="javascript' not in html
    assert str(linkify("dòng 1\ndòng 2")) == "dòng 1<br>dòng 2"
    assert str(linkify("https://x.vn/doc.")).endswith("</a>.")


def test_events_become_messages_with_buttons_and_agent_names():
    events = [
        {
            "event": "user",
            "timestamp": 1.0,
            "text": "tra cứu",
            "input_channel": "zalo",
            "parse_data": {"intent": {"name": "track_request"}},
        },
        {
            "event": "bot",
            "timestamp": 2.0,
            "text": "Chọn:",
            "data": {"buttons": [{"title": "Ký", "payload": "/sign"}]},
        },
        {"event": "action", "timestamp": 3.0, "name": "action_request_handoff"},
        {"event": "pause", "timestamp": 4.0},
        {"event": "bot", "timestamp": 5.0, "text": "Dạ em là Lan", "metadata": {"agent_name": "Lan"}},
        {"event": "slot", "timestamp": 6.0, "name": "x", "value": 1},
        {"event": "resume", "timestamp": 7.0},
    ]
    msgs = messages(events)
    assert [m["kind"] for m in msgs] == ["user", "bot", "system", "system", "bot", "system"]
    assert msgs[0]["intent"] == "track_request" and msgs[0]["channel"] == "zalo"
    assert msgs[1]["buttons"] == [{"title": "Ký", "payload": "/sign"}]
    assert msgs[4]["agent"] == "Lan" and msgs[1]["agent"] is None
    assert message_from_event({"event": "user", "text": "x" * 10_000})["text"] == "x" * 4000


def test_preview_keeps_the_customers_last_line():
    msgs = [
        {"kind": "user", "text": "cho tôi gặp nhân viên", "ts": 1},
        {"kind": "bot", "text": "a", "ts": 2},
        {"kind": "bot", "text": "b", "ts": 3},
        {"kind": "bot", "text": "c" * 300, "ts": 4},
    ]
    out = preview(msgs)
    assert [m["text"][:5] for m in out] == ["cho t", "b", "ccccc"]
    assert len(out[-1]["text"]) == 158


def test_durations_read_naturally():
    assert duration(5) == "5 giây"
    assert duration(125) == "2 phút 05 giây"
    assert duration(3 * 3600 + 61) == "3 giờ 01 phút"
    assert duration(-3) == "0 giây"


SIGNED = "http://127.0.0.1:8800/v1/documents/12/file?variant=signed&v=1&expires=1999999999&sig=" + "a" * 64
CERT = "http://127.0.0.1:8800/v1/signing-sessions/s1/certificate/file?expires=1999999999&sig=" + "b" * 64


def signed_answer() -> dict:
    return {
        "event": "bot",
        "timestamp": 9.0,
        "text": f"Ký số thành công. Kiểm tra tại http://127.0.0.1:8800/verify. Bản cũ: {SIGNED}",
        "data": {
            "buttons": [
                {"title": "✅ Hợp đồng", "payload": SIGNED, "type": "web_url", "url": SIGNED},
                {"title": "📄 Biên bản xác nhận ký số", "payload": CERT, "type": "web_url", "url": CERT},
                {"title": "Nhận thông báo", "payload": "/notifications_on"},
            ],
            "custom": {"documents": [{"title": "Hợp đồng", "url": SIGNED}]},
        },
    }


def test_the_desk_never_gets_a_customers_private_document_links():
    m = message_from_event(signed_answer())
    assert m is not None
    shown = str(m)
    assert "sig=" not in shown and "/documents/12/file" not in shown and "certificate/file" not in shown
    assert "[liên kết riêng của khách hàng]" in m["text"] and "/verify" in m["text"]  # public links stay
    titles = ["✅ Hợp đồng", "📄 Biên bản xác nhận ký số", "Nhận thông báo"]
    assert [b["title"] for b in m["buttons"]] == titles
    assert m["buttons"][2] == {"title": "Nhận thông báo", "payload": "/notifications_on"}


def test_the_customers_own_web_chat_keeps_its_links_as_links():
    m = message_from_event(signed_answer(), customer=True)
    assert m is not None
    assert [b.get("url") for b in m["buttons"][:2]] == [SIGNED, CERT]  # opened, never sent as a message
    assert "payload" not in m["buttons"][0] and m["buttons"][2]["payload"] == "/notifications_on"


def test_the_desk_sees_typed_phones_emails_and_codes_masked():
    user = {"event": "user", "timestamp": 1.0, "text": "sdt em 0905123456, mail lan@gmail.com, mã 482913"}
    agent = {
        "event": "bot",
        "timestamp": 2.0,
        "text": "Chị gọi lại 0912345678 giúp em",
        "metadata": {"agent_name": "Lan"},
    }
    for event, secrets in ((user, ("0905123456", "lan@gmail.com", "482913")), (agent, ("0912345678",))):
        desk_view = message_from_event(event)
        assert desk_view is not None and not any(s in desk_view["text"] for s in secrets)
        own_chat = message_from_event(event, customer=True)
        assert own_chat is not None and all(s in own_chat["text"] for s in secrets)  # the customer's own copy
    assert preview(messages([user]))[0]["text"].count("*") >= 6  # queue previews too


def test_queue_previews_label_an_agents_line_with_the_agent():
    events = [
        {"event": "user", "timestamp": 1.0, "text": "alo"},
        {"event": "bot", "timestamp": 2.0, "text": "Dạ em Lan đây", "metadata": {"agent_name": "Lan"}},
        {"event": "bot", "timestamp": 3.0, "text": "Bot trả lời"},
    ]
    lines = preview(messages(events))
    assert [line.get("agent") for line in lines] == [None, "Lan", None]
