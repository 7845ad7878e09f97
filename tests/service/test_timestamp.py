"""PAdES B-T (issue 17): with TSA_URL set, every seal carries an RFC 3161 timestamp from the
development TSA (a real process), valid against its root in pyHanko, and poppler's pdfsig accepts
the signature. Without a reachable TSA nothing is sealed."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF

from devstack import processes
from devstack.tsa import ROOT_FILE
from signing_service.http.app import create_app
from signing_service.pades import SealRequest
from signing_service.settings import Settings
from tests.service.conftest import Api, make_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dev_tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("tsa")
    ports = processes.Ports(tsa=processes.free_port())
    env = processes.with_dev_tsa(ports, processes.stack_env(ports), root / "keys")
    proc = processes.tsa(ports, env, root / "log", root / "keys")
    proc.start()
    try:
        proc.wait_healthy(60)
        yield env["TSA_URL"], root / "keys" / ROOT_FILE
    finally:
        proc.stop()


def stamped_settings(service_var: Path, request: pytest.FixtureRequest, url: str, root: Path) -> Settings:
    return make_settings(service_var, "sqlite", request, TSA_URL=url, TSA_ROOT_PATH=str(root))


@pytest.fixture
async def stamped(
    aiohttp_client: Any, service_var: Path, request: pytest.FixtureRequest, dev_tsa: tuple[str, Path]
) -> AsyncIterator[Api]:
    client = await aiohttp_client(create_app(stamped_settings(service_var, request, *dev_tsa)))
    yield Api(client)


def a_pdf() -> bytes:
    doc = FPDF()
    doc.add_page()
    doc.set_font("helvetica", size=12)
    doc.cell(text="Hop dong mua ban dien")
    return bytes(doc.output())


async def seal(api: Api) -> bytes:
    req = SealRequest("Khach hang", "Dong y ky bang OTP", "cskh-assistant / test", "K*** H***")
    return await asyncio.get_running_loop().run_in_executor(None, api.ctx.sealer.seal, a_pdf(), req)


async def check(api: Api, pdf: bytes) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, api.ctx.sealer.check, pdf)


async def test_a_seal_carries_a_valid_timestamp(stamped: Api, tmp_path: Path) -> None:
    signed = await seal(stamped)
    check_ = await check(stamped, signed)
    assert (check_.signed, check_.intact, check_.valid, check_.trusted) == (True, True, True, True)
    assert check_.timestamped and check_.timestamp_valid and check_.timestamp_at is not None
    assert abs((check_.timestamp_at - stamped.ctx.clock.now()).total_seconds()) < 120
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed)
    proc = await asyncio.create_subprocess_exec("pdfsig", str(path), stdout=subprocess.PIPE)
    out = (await proc.communicate())[0].decode()
    assert "Signature is Valid" in out, out


async def test_without_the_tsa_nothing_is_sealed(
    aiohttp_client: Any, service_var: Path, request: pytest.FixtureRequest, dev_tsa: tuple[str, Path]
) -> None:
    dead = f"http://127.0.0.1:{processes.free_port()}/"
    client = await aiohttp_client(create_app(stamped_settings(service_var, request, dead, dev_tsa[1])))
    with pytest.raises(Exception):  # noqa: B017 (pyHanko's own error type; the batch fails as a whole)
        await seal(Api(client))


async def test_a_seal_without_tsa_is_not_timestamped(api: Api) -> None:
    check_ = await check(api, await seal(api))
    assert check_.valid and not check_.timestamped and not check_.ltv


async def test_the_check_page_shows_the_timestamp_of_a_stamped_file(stamped: Api) -> None:
    import aiohttp
    from sqlalchemy import update

    from signing_service.drafts import sha256
    from signing_service.models import Document
    from tests.service.conftest import make_request

    signed = await seal(stamped)
    fresh = await make_request(stamped)  # a request of this test's own
    async with stamped.ctx.db.write() as s:  # as if the signing flow had stored it
        await s.execute(
            update(Document).where(Document.id == fresh.doc_ids[0]).values(signed_sha256=sha256(signed))
        )
    form = aiohttp.FormData()
    form.add_field("file", signed, filename="a.pdf", content_type="application/pdf")
    async with stamped.client.post("/verify", data=form) as r:
        page = await r.text()
    assert 'data-verdict="valid"' in page and 'id="timestamp"' in page
