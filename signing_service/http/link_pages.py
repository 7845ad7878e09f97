"""The small Vietnamese pages a customer sees when an expiring link (document or certificate) is
refused: expired, superseded or invalid."""

from __future__ import annotations

import html

from aiohttp import web


def link_page(status: int, title: str, text: str) -> web.Response:
    body = (
        "<!doctype html><html lang='vi'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title></head>"
        "<body style='font-family:sans-serif;max-width:36em;margin:3em auto'>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
        "<p>Tổng đài chăm sóc khách hàng EVNCPC: <strong>1900 1909</strong></p></body></html>"
    )
    return web.Response(status=status, text=body, content_type="text/html", charset="utf-8")


LINK_PAGES = {
    "expired": (
        "Liên kết đã hết hạn",
        "Liên kết xem hồ sơ này đã hết hạn. Quý khách vui lòng quay lại cuộc trò chuyện và yêu cầu xem hồ sơ "
        "để nhận liên kết mới.",
    ),
    "superseded": (
        "Hồ sơ đã được cập nhật",
        "Liên kết này dẫn tới phiên bản cũ của hồ sơ, đã được điện lực hiệu chỉnh. "
        "Quý khách vui lòng quay lại cuộc trò chuyện và yêu cầu xem hồ sơ để nhận phiên bản mới.",
    ),
    "invalid": (
        "Liên kết không hợp lệ",
        "Liên kết xem hồ sơ không đúng hoặc đã bị thay đổi. Quý khách vui lòng dùng đúng liên kết được gửi "
        "trong cuộc trò chuyện.",
    ),
}
