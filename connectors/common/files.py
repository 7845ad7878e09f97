"""Fetch a document the bot links to (a signing-service PDF link) so a platform that wants the bytes
(Zalo's upload API) can send it as a file. Bounded: a file over the limit is not read to the end."""

from __future__ import annotations

import asyncio
import re
import unicodedata

import aiohttp

from common.folding import strip_diacritics

CHUNK = 64 * 1024


class FetchError(Exception):
    """Why the file could not be fetched: too_large, not_pdf, not_image, http_<status> or network."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def pdf_filename(title: str) -> str:
    """An ASCII file name for a document title ("Hợp đồng mua bán điện" → "Hop-dong-mua-ban-dien.pdf")."""
    title = re.sub(r"\.pdf$", "", title.strip(), flags=re.IGNORECASE)  # a file name already ends so
    folded = unicodedata.normalize("NFKD", strip_diacritics(title))
    ascii_only = folded.encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", ascii_only).strip("-")[:80].rstrip("-")
    return f"{slug or 'tai-lieu'}.pdf"


class FileFetcher:
    def __init__(self, max_bytes: int, timeout: float = 15.0) -> None:
        self.max_bytes = max_bytes
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def pdf(self, url: str) -> bytes:
        """The PDF at `url`, or FetchError."""
        data = await self._fetch(url, self.max_bytes)
        if not data.startswith(b"%PDF-"):
            raise FetchError("not_pdf")
        return data

    async def image(self, url: str, max_bytes: int) -> tuple[bytes, str]:
        """The JPEG or PNG at `url` (type from its magic bytes) and its MIME type, or FetchError."""
        data = await self._fetch(url, max_bytes)
        if data.startswith(b"\xff\xd8\xff"):
            return data, "image/jpeg"
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            return data, "image/png"
        raise FetchError("not_image")

    async def _fetch(self, url: str, max_bytes: int) -> bytes:
        try:
            async with self._http().get(url) as resp:
                if resp.status != 200:
                    raise FetchError(f"http_{resp.status}")
                if (resp.content_length or 0) > max_bytes:
                    raise FetchError("too_large")
                data = bytearray()
                async for chunk in resp.content.iter_chunked(CHUNK):
                    data += chunk
                    if len(data) > max_bytes:
                        raise FetchError("too_large")
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            raise FetchError("network") from None
        return bytes(data)
