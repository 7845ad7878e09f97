"""Document kinds the service prepares for signing, with their Vietnamese titles."""

from __future__ import annotations

DOC_KINDS: dict[str, str] = {
    "hdmbd_sinh_hoat": "Hợp đồng mua bán điện sinh hoạt",
    "hdmbd_ngoai_sinh_hoat": "Hợp đồng mua bán điện ngoài sinh hoạt",
    "bb_thoa_thuan_dau_noi": "Biên bản thỏa thuận đấu nối",
    "phuong_an_dau_noi": "Phương án đấu nối",
    "bb_treo_thao": "Biên bản treo tháo thiết bị đo đếm",
    "phu_luc_sdbs": "Phụ lục sửa đổi, bổ sung hợp đồng mua bán điện",
    "bb_cham_dut": "Biên bản chấm dứt hợp đồng mua bán điện",
}

STATUS_LABELS: dict[str, str] = {
    "awaiting_signature": "Chờ ký",
    "amendment_requested": "Yêu cầu hiệu chỉnh",
    "signed": "Đã ký",
}
