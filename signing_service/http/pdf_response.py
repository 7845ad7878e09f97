"""A PDF served inline and never cached: documents, signed copies and signing certificates."""

from __future__ import annotations

from aiohttp import web


def pdf_response(data: bytes, filename: str, download: bool = False) -> web.Response:
    """`download`: saved as a file by the browser (the web chat's "Tải về"), else shown inline."""
    disposition = "attachment" if download else "inline"
    return web.Response(
        body=data,
        content_type="application/pdf",
        headers={
            "Content-Disposition": f'{disposition}; filename="{filename}"',
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
