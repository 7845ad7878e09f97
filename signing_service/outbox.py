"""Outgoing SMS and e-mail. Development: one JSON line per message appended to OUTBOX_PATH.

Real SMS/e-mail gateways implement the same `Outbox` protocol.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from common.chat_identity import chat_channel_label

from .workdays import VN_TZ


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes
    content_type: str = "application/pdf"


@dataclass(frozen=True)
class Message:
    channel: str  # sms | email
    to: str
    subject: str
    text: str
    created_at: str
    attachments: tuple[Attachment, ...] = ()  # e-mail only


class Outbox(Protocol):
    async def send(self, message: Message) -> None: ...


class FileOutbox:
    """Appends `{"channel","to","subject","text","created_at","attachments"}` lines; safe across
    processes (flock). Attachments are written beside it, in `attachments/<sha256>-<filename>`, and
    the line lists them as `{"filename","content_type","size","sha256","path"}`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def _write(self, message: Message) -> None:
        record = asdict(message)
        record["attachments"] = [self._store(a) for a in message.attachments]
        line = json.dumps(record, ensure_ascii=False)
        with open(self.path, "a", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(line + "\n")
            f.flush()

    def _store(self, a: Attachment) -> dict[str, object]:
        digest = hashlib.sha256(a.data).hexdigest()
        folder = self.path.parent / "attachments"
        folder.mkdir(exist_ok=True)
        target = folder / f"{digest[:16]}-{a.filename}"
        if not target.exists():  # same content, same name: written once
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(a.data)
            os.replace(tmp, target)
        return {
            "filename": a.filename,
            "content_type": a.content_type,
            "size": len(a.data),
            "sha256": digest,
            "path": str(target),
        }

    async def send(self, message: Message) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._write, message)


def otp_message(channel: str, to: str, code: str, titles: list[str], customer: str, now: datetime) -> Message:
    """The Vietnamese OTP text. Only the code has 6 digits in a row, so it is easy to copy."""
    count = len(titles)
    created = now.astimezone(timezone.utc).isoformat(timespec="seconds")
    if channel == "sms":
        text = (
            f"EVNCPC: Mã xác thực (OTP) để ký {count} hồ sơ điện tử của Quý khách là {code}. "
            "Mã có hiệu lực trong 5 phút. Tuyệt đối không cung cấp mã này cho bất kỳ ai."
        )
        return Message("sms", to, "Mã xác thực ký hồ sơ", text, created)
    listing = "\n".join(f"- {t}" for t in titles)
    text = (
        f"Kính gửi Quý khách {customer},\n\n"
        f"Mã xác thực (OTP) để ký các hồ sơ sau là: {code}\n{listing}\n\n"
        "Mã có hiệu lực trong 5 phút và chỉ dùng được một lần. "
        "Tuyệt đối không cung cấp mã này cho bất kỳ ai, kể cả nhân viên điện lực.\n\n"
        "Trân trọng,\nTổng công ty Điện lực miền Trung - Tổng đài CSKH 1900 1909"
    )
    return Message("email", to, "EVNCPC - Mã xác thực ký hồ sơ điện tử", text, created)


def verification_message(
    channel: str,
    to: str,
    code: str,
    request_code: str,
    now: datetime,
    sign_titles: list[str] | None = None,
    chat_channel: str | None = None,
) -> Message:
    """The code that links a chat to a request. It says what it unlocks, so a customer who did not ask
    for it knows to ignore it; only a code sent to sign names the drafts and may confirm a signature."""
    created = now.astimezone(timezone.utc).isoformat(timespec="seconds")
    if sign_titles:
        listing = "; ".join(sign_titles)
        text = (
            f"EVNCPC: Mã xác minh và KÝ hồ sơ yêu cầu {request_code} là {code} (5 phút). "
            f"Nếu Quý khách đồng ý ký ngay sau khi xác minh, mã này là chữ ký của Quý khách cho: {listing}. "
            "Tuyệt đối không cung cấp mã cho bất kỳ ai. Nếu không yêu cầu, vui lòng bỏ qua."
        )
    else:
        where = chat_channel_label(chat_channel)
        text = (
            f"EVNCPC: Mã xác minh để XEM hồ sơ yêu cầu {request_code} trên {where} là {code} "
            "(5 phút). Mã này không dùng để ký. Tuyệt đối không cung cấp mã cho bất kỳ ai. "
            "Nếu Quý khách không yêu cầu, vui lòng bỏ qua tin nhắn này."
        )
    if channel == "sms":
        return Message("sms", to, "Mã xác minh hồ sơ", text, created)
    return Message("email", to, "EVNCPC - Mã xác minh hồ sơ điện tử", text, created)


def signed_notice(
    channel: str, to: str, request_code: str, titles: list[str], chat_channel: str, now: datetime
) -> Message:
    """After every signing, to each registered contact: a signature nobody expected is noticed at once."""
    created = now.astimezone(timezone.utc).isoformat(timespec="seconds")
    local = now.astimezone(VN_TZ)
    text = (
        f"EVNCPC: Hồ sơ của yêu cầu {request_code} đã được ký lúc {local:%H:%M ngày %d/%m/%Y} "
        f"qua {chat_channel_label(chat_channel)}: {'; '.join(titles)}. "
        "Nếu không phải Quý khách thực hiện, vui lòng gọi ngay 1900 1909."
    )
    subject = "EVNCPC - Thông báo hồ sơ đã được ký"
    return Message(channel, to, subject, text, created)


def signed_files_email(
    to: str,
    customer: str,
    request_code: str,
    titles: list[str],
    chat_channel: str,
    now: datetime,
    files: list[Attachment],
    check_url: str,
) -> Message:
    """After a signing, to the registered e-mail: the signed PDFs and the signing certificate, with
    how to check them, and the warning of `signed_notice` (a signature nobody expected)."""
    created = now.astimezone(timezone.utc).isoformat(timespec="seconds")
    local = now.astimezone(VN_TZ)
    listing = "\n".join(f"- {t}" for t in titles)
    text = (
        f"Kính gửi Quý khách {customer},\n\n"
        f"Các hồ sơ sau của yêu cầu {request_code} đã được ký số lúc {local:%H:%M ngày %d/%m/%Y} "
        f"qua {chat_channel_label(chat_channel)}:\n{listing}\n\n"
        "Kèm theo thư này là bản đã ký của từng hồ sơ và biên bản xác nhận ký số. "
        "Quý khách vui lòng lưu giữ các tệp này.\n\n"
        f"Cách kiểm tra: mở {check_url}, tải tệp lên (hoặc quét mã QR trên biên bản). Trang kiểm tra cho "
        "biết tệp có do hệ thống của điện lực ký số và còn nguyên vẹn hay không.\n\n"
        "Nếu không phải Quý khách thực hiện, vui lòng gọi ngay Tổng đài 1900 1909.\n\n"
        "Trân trọng,\nTổng công ty Điện lực miền Trung - Tổng đài CSKH 1900 1909"
    )
    subject = f"EVNCPC - Hồ sơ đã ký của yêu cầu {request_code}"
    return Message("email", to, subject, text, created, tuple(files))
