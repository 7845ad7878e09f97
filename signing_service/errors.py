"""Errors with stable codes and their Vietnamese messages (the HTTP layer turns them into JSON)."""

from __future__ import annotations

from typing import Any

MESSAGES: dict[str, str] = {
    "unauthorized": "Thiếu hoặc sai mã xác thực dịch vụ.",
    "invalid_json": "Dữ liệu gửi lên không đúng định dạng JSON.",
    "invalid_field": "Dữ liệu gửi lên không hợp lệ.",
    "invalid_request_code": "Mã yêu cầu không đúng định dạng (ví dụ: PC05TK0000123).",
    "invalid_unit": "Mã đơn vị điện lực không đúng định dạng (ví dụ: PC05TK).",
    "request_not_found": "Không tìm thấy yêu cầu với mã này.",
    "unknown_unit": "Không tìm thấy đơn vị điện lực này.",
    "name_required": "Vui lòng cho biết tên khách hàng.",
    "query_too_long": "Nội dung tìm kiếm quá dài.",
    "document_not_found": "Không tìm thấy hồ sơ.",
    "not_found": "Không tìm thấy.",
    "method_not_allowed": "Phương thức không được hỗ trợ.",
    "text_too_short": "Nội dung yêu cầu hiệu chỉnh quá ngắn (tối thiểu 5 ký tự).",
    "text_too_long": "Nội dung yêu cầu hiệu chỉnh quá dài (tối đa 1000 ký tự).",
    "document_not_awaiting": "Hồ sơ không ở trạng thái chờ ký.",
    "consent_required": "Quý khách cần xác nhận: Tôi đã đọc, hiểu và đồng ý với dự thảo.",
    "no_documents": "Vui lòng chọn ít nhất một hồ sơ để ký.",
    "no_contact": "Yêu cầu chưa đăng ký thông tin liên hệ cho kênh nhận mã này.",
    "send_limit": "Quý khách đã yêu cầu gửi mã quá nhiều lần. Vui lòng thử lại sau.",
    "resend_cooldown": "Vui lòng đợi trước khi yêu cầu gửi lại mã.",
    "send_failed": "Chưa gửi được mã xác thực. Vui lòng thử lại sau.",
    "session_not_found": "Không tìm thấy phiên ký.",
    "session_locked": "Phiên ký đã bị khóa do nhập sai mã quá số lần cho phép.",
    "session_finished": "Phiên ký đã kết thúc.",
    "invalid_otp_format": "Mã xác thực gồm 6 chữ số.",
    "wrong_otp": "Mã xác thực không đúng.",
    "otp_replaced": "Mã này đã được thay bằng mã mới vừa gửi. Vui lòng nhập mã mới nhất.",
    "otp_expired": "Mã xác thực đã hết hạn. Vui lòng yêu cầu gửi lại mã.",
    "document_changed": "Dự thảo đã thay đổi sau khi quý khách đồng ý. Vui lòng xem lại và ký lại.",
    "signing_failed": (
        "Chưa ký được hồ sơ do lỗi hệ thống. Không hồ sơ nào bị thay đổi; vui lòng thử lại sau."
    ),
    "internal_error": "Hệ thống đang gặp sự cố. Vui lòng thử lại sau.",
    "database_unavailable": "Hệ thống đang tạm gián đoạn. Vui lòng thử lại sau ít phút.",
    "payload_too_large": "Dữ liệu gửi lên quá lớn.",
    "otp_frozen": "Việc gửi mã cho yêu cầu này đã tạm khóa do nhập sai nhiều lần. Vui lòng gọi 1900 1909.",
    "chat_user_otp_limit": "Quý khách đã yêu cầu mã quá nhiều lần hôm nay. Vui lòng thử lại ngày mai.",
    "too_many_wrong_codes": "Quý khách đã nhập sai mã quá nhiều lần hôm nay. Vui lòng thử lại ngày mai.",
    "verification_not_recent": "Cần mã xác thực mới để ký.",
    "challenge_not_found": "Không tìm thấy mã xác minh.",
    "candidate_not_found": "Danh sách tra cứu đã hết hạn. Vui lòng tra cứu lại.",
    "conversation_required": "Thiếu mã cuộc trò chuyện.",
    "invalid_chat_user": "Thông tin người trò chuyện không hợp lệ.",
    "chat_user_required": "Thiếu thông tin người trò chuyện.",
    "staff_only": "Chỉ nhân viên được thực hiện thao tác này.",
    "request_completed": "Yêu cầu đã hoàn thành, không còn bước tiếp theo.",
    "no_next_step": "Yêu cầu không có bước tiếp theo.",
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str | None = None, /, **extra: Any) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message or MESSAGES.get(code, code)
        self.extra = extra
