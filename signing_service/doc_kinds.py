"""Document kinds the service prepares for signing, with their Vietnamese titles.

The ten kinds EVN's e-transaction system signs (seeds/004_fe750ab2e2b0796c.txt), the sale contract
counted twice (household / other purposes). Each has a template `templates/<kind>.txt.j2`.
"""

from __future__ import annotations

DOC_KINDS: dict[str, str] = {
    "hdmbd_sinh_hoat": "Hợp đồng mua bán điện sinh hoạt",
    "hdmbd_ngoai_sinh_hoat": "Hợp đồng mua bán điện ngoài sinh hoạt",
    "bb_thoa_thuan_dau_noi": "Biên bản thỏa thuận đấu nối",
    "phuong_an_dau_noi": "Phương án đấu nối",
    "bb_treo_thao": "Biên bản treo tháo thiết bị đo đếm",
    "phu_luc_sdbs": "Phụ lục sửa đổi, bổ sung hợp đồng mua bán điện",
    "bb_cham_dut": "Biên bản chấm dứt hợp đồng mua bán điện",
    "hd_dau_tu_cong_trinh": "Hợp đồng đầu tư công trình",
    "bb_ty_le_muc_dich": "Biên bản thỏa thuận tỷ lệ mục đích sử dụng điện",
    "bb_so_ho_chung_cong_to": "Biên bản thỏa thuận số hộ sử dụng điện chung công tơ",
    "hd_lap_dat_sau_cong_to": "Hợp đồng dịch vụ lắp đặt dây dẫn điện sau công tơ",
}

STATUS_LABELS: dict[str, str] = {
    "awaiting_signature": "Chờ ký",
    "amendment_requested": "Yêu cầu hiệu chỉnh",
    "signed": "Đã ký",
}
