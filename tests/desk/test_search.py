"""Search (GET /search) and a customer's earlier conversations on the conversation page.

Handoff rows are written straight into the desk's database, with the customer columns the customer
index would fill; one test runs the index itself against a fake signing service.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient

from agent_desk import db
from agent_desk.customer_index import CustomerIndexer, customer_fields, name_key
from agent_desk.desk import VN_TZ
from agent_desk.keys import DESK
from agent_desk.search import earlier, search
from agent_desk.search_query import SearchError, parse
from agent_desk.search_schema import NAME_INDEX
from agent_desk.signing_client import SigningClient
from tests.desk.conftest import add_account, desk_settings, login

ROW_RE = re.compile(r'<a href="/conversations/(\d+)">#\d+</a>')


def ts(day: str, hour: int = 10) -> float:
    d, m, y = (int(x) for x in day.split("/"))
    return datetime(y, m, d, hour, tzinfo=VN_TZ).timestamp()


async def add_handoff(
    client: TestClient,
    sender: str,
    *,
    channel: str = "zalo",
    code: str | None = None,
    name: str | None = None,
    phone: str | None = None,
    at: float | None = None,
    tag: str | None = "resolved",
    status: str = "closed",
    agent_id: int | None = None,
) -> int:
    at = at or time.time()
    values: dict[str, Any] = {
        "sender_id": sender,
        "channel": channel,
        "status": status,
        "request_code": code,
        "requested_at": at,
        "queued_at": at,
        "closed_at": at + 300 if status == "closed" else None,
        "close_tag": tag if status == "closed" else None,
        "agent_id": agent_id,
        "last_messages": "[]",
        "requeue_count": 0,
    }
    if code:
        values["customer_code"] = code
        values.update(customer_fields({"customer": {"name_masked": name, "phone_masked": phone}}))
    async with client.app[DESK].engine.begin() as conn:
        result = await conn.execute(db.handoffs.insert().values(**values))
    return int(result.inserted_primary_key[0])


async def found(client: TestClient, q: str, **params: str) -> list[int]:
    resp = await client.get("/search", params={"q": q, **params})
    assert resp.status == 200, await resp.text()
    return [int(x) for x in ROW_RE.findall(await resp.text())]


@pytest.fixture
async def seeded(desk_factory) -> tuple[TestClient, dict[str, int]]:
    client = await desk_factory(background=False)
    await add_account(client, "lan", name="Lan")
    await login(client, "lan")
    ids = {
        "an": await add_handoff(
            client,
            "zalo-an",
            code="PC05TK0000123",
            name="Nguyễn V** A*",
            phone="090****567",
            at=ts("02/12/2025"),
        ),
        "anh": await add_handoff(
            client,
            "tg-anh",
            channel="telegram",
            code="PC05TK0000124",
            name="Nguyễn V** A**",
            phone="091****567",
            at=ts("15/12/2025"),
            tag="escalated",
        ),
        "binh": await add_handoff(
            client,
            "zalo-binh",
            code="PC01HN0000001",
            name="Trần T** B***",
            phone="098****111",
            at=ts("03/01/2026"),
        ),
        "nocode": await add_handoff(
            client, "rest-1", channel="rest", at=ts("04/01/2026"), tag="customer_left"
        ),
    }
    return client, ids


async def test_search_needs_a_login(desk_factory):
    client = await desk_factory(background=False)
    resp = await client.get("/search?q=an", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"].startswith("/login?next=")


async def test_name_with_or_without_diacritics_in_any_case(seeded):
    client, ids = seeded
    for q in ("Nguyễn Văn An", "nguyen van an", "NGUYỄN VĂN AN", "văn an", "an nguyen"):
        assert await found(client, q) == [ids["an"]], q
    # The family name alone finds both Nguyễn, newest first; "Anh" (4 letters) is not "An".
    assert await found(client, "nguyễn") == [ids["anh"], ids["an"]]
    assert await found(client, "nguyen van anh") == [ids["anh"]]
    assert await found(client, "Trần Thị Bình") == [ids["binh"]]
    assert await found(client, "Lê Văn An") == []


async def test_results_show_masked_names_only(seeded):
    client, ids = seeded
    resp = await client.get("/search", params={"q": "nguyen van an"})
    page = await resp.text()
    results = page[page.index('id="search-results"') : page.index("</table>")]
    assert "Nguyễn V** A*" in results and "090****567" in results and "PC05TK0000123" in results
    assert "Văn" not in results and "0905" not in results
    assert f'href="/conversations/{ids["an"]}"' in results


async def test_code_phone_channel_tag_and_dates(seeded):
    client, ids = seeded
    assert await found(client, "pc05tk 0000123") == [ids["an"]]
    assert await found(client, "PC05-TK-0000124") == [ids["anh"]]
    assert await found(client, "PC05TK0000999") == []
    # Three last digits: both numbers end in 567; the whole number tells them apart.
    assert await found(client, "567") == [ids["anh"], ids["an"]]
    assert await found(client, "0905 123 567") == [ids["an"]]
    assert await found(client, "+84911000567") == [ids["anh"]]
    assert await found(client, "zalo") == [ids["binh"], ids["an"]]
    assert await found(client, "kênh:telegram") == [ids["anh"]]
    assert await found(client, "kênh: rest") == [ids["nocode"]]
    assert await found(client, "kq:escalated") == [ids["anh"]]
    assert await found(client, "kết quả: khách không phản hồi") == [ids["nocode"]]
    assert await found(client, 'kq:"đã giải quyết" nguyễn') == [ids["an"]]
    assert await found(client, "01/12/2025-31/12/2025") == [ids["anh"], ids["an"]]
    assert await found(client, "2/12/2025") == [ids["an"]]
    assert await found(client, "01/12/2025 - 31/01/2026 zalo") == [ids["binh"], ids["an"]]
    assert await found(client, "nguyễn 03/12/2025-31/12/2025") == [ids["anh"]]


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("31/02/2025", "Ngày «31/02/2025» không hợp lệ"),
        ("31/12/2025-01/12/2025", "có ngày đầu sau ngày cuối"),
        ("pc05", "không phải mã yêu cầu"),
        ("12", "số điện thoại nhập 3 số cuối"),
        ("kênh:viber", "Không có kênh «viber»"),
        ("kq:tot", "Không có kết quả xử lý «tot»"),
        ("abc:1", "Không hiểu bộ lọc «abc:»"),
        ("an@b", "Không hiểu «an@b»"),
        ("３４５", "Không hiểu «３４５»"),
        ("a b c d e f g", "Tên tối đa 6 từ"),
        ("x" * 201, "Từ khóa quá dài: tối đa 200 ký tự"),
    ],
)
async def test_bad_input_is_a_clear_400(seeded, q, message):
    client, _ = seeded
    resp = await client.get("/search", params={"q": q})
    assert resp.status == 400
    page = await resp.text()
    assert message in page, page
    assert 'id="search-results"' not in page


async def test_bad_page_and_huge_input(seeded):
    client, _ = seeded
    for p in ("0", "abc", "٣", "101", "99999999999"):
        resp = await client.get("/search", params={"q": "zalo", "p": p})
        assert resp.status == 400, p
        assert "Số trang không hợp lệ" in await resp.text()
    # Past 8 KB the request line itself is refused by aiohttp (a 400 too, never a 500).
    resp = await client.get("/search", params={"q": "nguyễn " * 1000})
    assert resp.status == 400
    resp = await client.get("/search", params={"q": "nguyen " * 500})
    assert resp.status == 400
    page = await resp.text()
    assert "Từ khóa quá dài" in page
    # The box gives back at most its own limit of what was sent.
    box = re.search(r'name="q" id="search-q" value="([^"]*)"', page)
    assert box and len(box.group(1)) <= 200


async def test_empty_box_shows_help_and_no_results(seeded):
    client, _ = seeded
    resp = await client.get("/search")
    assert resp.status == 200
    page = await resp.text()
    assert "Cách tìm" in page and 'id="search-results"' not in page and 'id="search-empty"' not in page
    resp = await client.get("/search", params={"q": "Lê"})
    assert "Không tìm thấy hội thoại nào" in await resp.text()


async def test_pages_of_fifty_newest_first(desk_factory):
    client = await desk_factory(background=False)
    await add_account(client, "lan")
    await login(client, "lan")
    base = ts("01/11/2025")
    ids = [await add_handoff(client, f"zalo-{i}", at=base + i * 60) for i in range(60)]
    resp = await client.get("/search", params={"q": "zalo"})
    page = await resp.text()
    assert [int(x) for x in ROW_RE.findall(page)] == ids[::-1][:50]
    assert "p=2" in page and "Trang sau" in page
    second = await found(client, "zalo", p="2")
    assert second == ids[::-1][50:]
    assert await found(client, "zalo", p="3") == []


async def test_earlier_conversations_on_the_conversation_page(desk_factory):
    client = await desk_factory(background=False)
    await add_account(client, "lan", name="Lan")
    await login(client, "lan")
    async with client.app[DESK].engine.connect() as conn:
        lan = await conn.scalar(sa.select(db.agents.c.id).where(db.agents.c.username == "lan"))
    first = await add_handoff(
        client, "zalo-77", code="PC05TK0000123", name="Lê T** H***", at=ts("01/10/2025"), agent_id=lan
    )
    other_chat = await add_handoff(
        client, "tg-9", channel="telegram", code="PC05TK0000123", name="Lê T** H***", at=ts("05/10/2025")
    )
    unrelated = await add_handoff(
        client, "zalo-88", code="PC05TK0000555", name="Lê T** H***", at=ts("06/10/2025")
    )
    current = await add_handoff(
        client, "zalo-77", code="PC05TK0000123", name="Lê T** H***", at=ts("07/10/2025"), status="waiting"
    )
    later = await add_handoff(client, "zalo-77", at=ts("08/10/2025"))
    resp = await client.get(f"/conversations/{current}")
    assert resp.status == 200
    page = await resp.text()
    section = page[page.index('id="earlier"') :]
    section = section[: section.index("</section>")]
    assert "Các cuộc trò chuyện trước" in section
    listed = [int(x) for x in ROW_RE.findall(section)]
    # Same chat user or same request code, earlier only, newest first.
    assert listed == [other_chat, first]
    assert unrelated not in listed and later not in listed
    assert "Đã giải quyết" in section and "01/10/2025" in section and "telegram" in section
    assert "Lan" in section
    resp = await client.get(f"/conversations/{first}")
    assert "Khách chưa có cuộc trò chuyện nào trước đây" in await resp.text()


async def _fake_signing(aiohttp_server, answers: dict[str, dict[str, Any]], calls: list[str]) -> str:
    async def get_request(request: web.Request) -> web.Response:
        code = request.match_info["code"]
        calls.append(code)
        if code == "PC09XX9999999":
            return web.json_response({"error": "unavailable"}, status=503)
        if code not in answers:
            return web.json_response({"error": "request_not_found"}, status=404)
        return web.json_response(answers[code])

    app = web.Application()
    app.router.add_get("/v1/requests/{code}", get_request)
    server = await aiohttp_server(app)
    return str(server.make_url(""))


async def test_customer_index_reads_masked_data_from_the_signing_service(desk_factory, aiohttp_server):
    import aiohttp

    calls: list[str] = []
    answers = {
        "PC05TK0000123": {"customer": {"name_masked": "Phạm Đ** M***", "phone_masked": "090****567"}},
        "PC05TK0000200": {"customer": {"name_masked": "Võ H** N**", "phone_masked": None}},
    }
    url = await _fake_signing(aiohttp_server, answers, calls)
    client = await desk_factory(background=False)
    engine = client.app[DESK].engine
    first = await add_handoff(client, "zalo-1", at=ts("01/12/2025"))
    again = await add_handoff(client, "zalo-1", at=ts("02/12/2025"))
    unknown = await add_handoff(client, "zalo-2", at=ts("03/12/2025"))
    async with engine.begin() as conn:  # codes the desk learnt from the bot; not looked up yet
        for hid, code in ((first, "PC05TK0000123"), (again, "PC05TK0000123"), (unknown, "PC05TK0000404")):
            await conn.execute(db.handoffs.update().where(db.handoffs.c.id == hid).values(request_code=code))
    async with aiohttp.ClientSession() as session:
        indexer = CustomerIndexer(engine, SigningClient(session, url, "t"), 0.1)
        assert await indexer.index_pending() == 3
        assert sorted(calls) == ["PC05TK0000123", "PC05TK0000404"]  # one call per code
        assert await indexer.index_pending() == 0
        async with engine.connect() as conn:
            rows = {r.id: r for r in await conn.execute(sa.select(db.handoffs))}
        assert rows[first].customer_name_masked == "Phạm Đ** M***"
        assert rows[first].customer_name_key == " pham d3 m4 "
        assert rows[first].customer_phone_tail == "567"
        assert rows[unknown].customer_code == "PC05TK0000404" and rows[unknown].customer_name_key is None
        assert [h.id for h in (await search(engine, parse("Phạm Đức Minh"))).hits] == [again, first]

        # The customer of an open conversation gives another code: it is looked up again.
        open_id = await add_handoff(client, "zalo-3", status="active", at=ts("04/12/2025"))
        async with engine.begin() as conn:
            await conn.execute(
                db.handoffs.update()
                .where(db.handoffs.c.id == open_id)
                .values(request_code="PC05TK0000123", customer_code="PC05TK0000123")
            )
            await conn.execute(
                db.handoffs.update().where(db.handoffs.c.id == open_id).values(request_code="PC05TK0000200")
            )
        assert await indexer.index_pending() == 1
        assert [h.id for h in (await search(engine, parse("vo hai nam"))).hits] == [open_id]

        # The service failing: the row stays pending for the next round.
        failing = await add_handoff(client, "zalo-4", at=ts("05/12/2025"))
        async with engine.begin() as conn:
            await conn.execute(
                db.handoffs.update().where(db.handoffs.c.id == failing).values(request_code="PC09XX9999999")
            )
        from agent_desk.signing_client import SigningError

        with pytest.raises(SigningError):
            await indexer.index_pending()
        assert [r[0] for r in await indexer.pending()] == [failing]


def test_name_key_keeps_only_what_the_mask_shows():
    assert name_key("Nguyễn V** A*") == " nguyen v3 a2 "
    assert name_key("Đặng Đ** Ư**") == " dang d3 u3 "
    assert name_key("A*") == " a2 "
    assert name_key("") is None and name_key(None) is None
    assert name_key("*** 123") is None
    fields = customer_fields({"customer": {"name_masked": "Lê T** H***", "phone_masked": "0905123567"}})
    assert fields["customer_phone_masked"] is None  # not masked: not kept
    assert customer_fields(None)["customer_name_key"] is None


def test_query_parser_limits():
    with pytest.raises(SearchError) as exc:
        parse("1/1/2025 2/2/2025")
    assert exc.value.code == "two_dates"
    with pytest.raises(SearchError):
        parse("pc05tk0000123 pc05tk0000124")
    assert parse("   ").empty
    assert parse("\x00nguyễn\x1f").words == ("nguyen",)


async def test_schema_upgrade_adds_columns_and_indexes(tmp_path):
    """A database made before search: the columns and indexes are added at start."""
    path = tmp_path / "old.db"
    engine = db.make_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "CREATE TABLE desk_handoffs (id INTEGER PRIMARY KEY, sender_id VARCHAR(255) NOT NULL, "
                "channel VARCHAR(64) NOT NULL, status VARCHAR(16) NOT NULL, request_code VARCHAR(32), "
                "requested_at FLOAT NOT NULL, queued_at FLOAT NOT NULL, claimed_at FLOAT, agent_id INTEGER, "
                "agent_activity_at FLOAT, closed_at FLOAT, close_tag VARCHAR(64), "
                "last_messages TEXT NOT NULL, customer_last_at FLOAT, requeue_count INTEGER NOT NULL)"
            )
        )
        await conn.execute(
            sa.text(
                "INSERT INTO desk_handoffs (sender_id, channel, status, request_code, requested_at, "
                "queued_at, last_messages, requeue_count) "
                "VALUES ('z', 'zalo', 'closed', 'PC05TK0000123', 1, 1, '[]', 0)"
            )
        )
    try:
        await db.create_schema(engine)
        async with engine.connect() as conn:

            def names(sync_conn: sa.engine.Connection) -> tuple[set[str], set[str]]:
                inspector = sa.inspect(sync_conn)
                return (
                    {c["name"] for c in inspector.get_columns("desk_handoffs")},
                    {i["name"] for i in inspector.get_indexes("desk_handoffs")},
                )

            columns, indexes = await conn.run_sync(names)
        assert {"customer_code", "customer_name_key", "customer_phone_tail"} <= columns
        assert {"ix_desk_handoffs_requested", "ix_desk_handoffs_code", "ix_desk_handoffs_sender"} <= indexes
        assert [h.request_code for h in (await search(engine, parse("PC05TK0000123"))).hits] == [
            "PC05TK0000123"
        ]
        await db.create_schema(engine)  # again: nothing to do, no error
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_search_on_postgresql(desk_factory, tmp_path, postgres_url):
    client = await desk_factory(
        desk_settings(tmp_path, env={"DESK_DATABASE_URL": postgres_url}), background=False
    )
    engine = client.app[DESK].engine
    async with engine.connect() as conn:
        index = await conn.scalar(
            sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"), {"n": NAME_INDEX}
        )
    assert index and "gin_trgm_ops" in index
    await add_account(client, "lan")
    await login(client, "lan")
    an = await add_handoff(client, "zalo-an", code="PC05TK0000123", name="Nguyễn V** A*", phone="090****567")
    await add_handoff(client, "zalo-anh", code="PC05TK0000124", name="Nguyễn V** A**", phone="091****567")
    assert await found(client, "NGUYỄN văn an") == [an]
    assert await found(client, "pc05tk0000123 567 zalo") == [an]
    hits, more = await earlier(engine, an + 100, "zalo-an", None, time.time() + 10)
    assert [h.id for h in hits] == [an] and not more
