"""A call-centre agent's short text to a request's registered phone, by SMS through the outbox.

`POST /v1/requests/{code}/staff-sms` with `{"text", "by", "chat_channel", "chat_user"}`: what the
agent desk sends after Zalo's messaging window closed (agent_desk/channel_window.py). Staff only
(the service token, no chat headers). Refused unless the conversation it answers is verified for
the request (the customer proved they hold its phone or e-mail): a code typed into a chat must not
let an agent text someone else's phone. At most `MAX_TEXT` characters and `MAX_PER_DAY` messages
per request in 24 hours; every message is audited (`staff_sms`: who, which conversation, the text,
the masked number).
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta, timezone

from aiohttp import web
from sqlalchemy import func, select

from common.chat_identity import CHAT_CHANNELS, valid_chat_user

from .. import audit, verification
from ..errors import ApiError
from ..masking import mask_phone
from ..models import AuditEvent
from ..outbox import Message
from ..requests_query import contacts_of, load_request
from .api_staff import STAFF_LOGIN
from .chat_headers import staff_only
from .inputs import choice, json_body, opt_str, request_code
from .keys import ctx

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
MAX_TEXT = 300
MAX_PER_DAY = 10
SUBJECT = "EVNCPC - Trả lời của tổng đài viên"
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
ACTION = "staff_sms"


@routes.post("/v1/requests/{code}/staff-sms")
async def staff_sms(request: web.Request) -> web.Response:
    staff_only(request)
    code = request_code(request.match_info["code"])
    body = await json_body(request)
    text = CONTROL.sub("", opt_str(body, "text", 2 * MAX_TEXT) or "").strip()
    if not text or len(text) > MAX_TEXT:
        raise ApiError(400, "invalid_field", f"Nội dung SMS từ 1 đến {MAX_TEXT} ký tự.", field="text")
    by = opt_str(body, "by", 64) or ""
    if not STAFF_LOGIN.match(by):
        raise ApiError(400, "invalid_field", field="by")
    channel = choice(body, "chat_channel", CHAT_CHANNELS)
    user = opt_str(body, "chat_user", 128) or ""
    if not valid_chat_user(user):
        raise ApiError(400, "invalid_field", field="chat_user")
    c = ctx(request)
    now = c.clock.now()
    async with c.db.write() as s:
        req = await load_request(s, code, lock=True)
        who = verification.ChatUser(channel, user)
        if await verification.active(s, req.id, who, now) is None:
            raise ApiError(
                403,
                "not_verified",
                "Khách trong cuộc trò chuyện này chưa xác minh là chủ hồ sơ nên không gửi SMS tới số "
                "đăng ký của yêu cầu. Hãy đề nghị khách nhắn lại qua Zalo hoặc gọi tổng đài.",
            )
        phone = (await contacts_of(s, req.id)).get("sms")
        if not phone:
            raise ApiError(409, "no_contact", "Yêu cầu chưa đăng ký số điện thoại nhận SMS.")
        since = now - timedelta(days=1)
        sent_today = await s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.request_id == req.id, AuditEvent.action == ACTION, AuditEvent.at >= since)
        )
        if (sent_today or 0) >= MAX_PER_DAY:
            raise ApiError(
                429,
                "send_limit",
                f"Đã gửi {MAX_PER_DAY} SMS cho yêu cầu này trong 24 giờ qua.",
                retry_after=3600,
            )
        masked = mask_phone(phone)
        audit.record(
            s,
            at=now,
            request_id=req.id,
            actor=audit.staff_actor(by),
            action=ACTION,
            channel="sms",
            chat_channel=channel,
            chat_user=user,
            to=masked,
            text=text,
        )
        # Sent inside the transaction: if the outbox refuses, nothing is audited as sent.
        created = now.astimezone(timezone.utc).isoformat(timespec="seconds")
        try:
            await c.outbox.send(Message("sms", phone, SUBJECT, f"EVNCPC {req.code}: {text}", created))
        except OSError as exc:
            log.error("staff SMS for request id %d not sent: %s", req.id, type(exc).__name__)
            raise ApiError(503, "send_failed", "Chưa gửi được SMS. Vui lòng thử lại sau.") from exc
    log.info("staff SMS sent for request id %d by %s", req.id, by)
    return web.json_response({"sent": True, "to": masked})
