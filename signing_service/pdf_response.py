"""A PDF served inline and never cached: documents, signed copies and signing certificates."""

from __future__ import annotations

from aiohttp import web


def pdf_response(data: bytes, filename: str) -> web.Response:
    return web.Response(
        body=data,
        content_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
