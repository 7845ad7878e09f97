"""Power units (Điện lực) known to the service: code, name, company, town/rural area."""

from __future__ import annotations

# (code, name, company, area). The area decides the committed time of low-voltage new supply.
UNITS: list[tuple[str, str, str, str]] = [
    ("PC04HC", "Điện lực Hải Châu", "PC Đà Nẵng", "town"),
    ("PC04LC", "Điện lực Liên Chiểu", "PC Đà Nẵng", "town"),
    ("PC04TK", "Điện lực Thanh Khê", "PC Đà Nẵng", "town"),
    ("PC04ST", "Điện lực Sơn Trà", "PC Đà Nẵng", "town"),
    ("PC04CL", "Điện lực Cẩm Lệ", "PC Đà Nẵng", "town"),
    ("PC04NH", "Điện lực Ngũ Hành Sơn", "PC Đà Nẵng", "town"),
    ("PC04HV", "Điện lực Hòa Vang", "PC Đà Nẵng", "rural"),
    ("PC05TK", "Điện lực Tam Kỳ", "PC Quảng Nam", "town"),
    ("PC05HA", "Điện lực Hội An", "PC Quảng Nam", "town"),
    ("PC05DB", "Điện lực Điện Bàn", "PC Quảng Nam", "town"),
    ("PC05DX", "Điện lực Duy Xuyên", "PC Quảng Nam", "rural"),
    ("PC05NT", "Điện lực Núi Thành", "PC Quảng Nam", "rural"),
    ("PC05TB", "Điện lực Thăng Bình", "PC Quảng Nam", "rural"),
    ("PC05DL", "Điện lực Đại Lộc", "PC Quảng Nam", "rural"),
    ("PC06QN", "Điện lực TP Quảng Ngãi", "PC Quảng Ngãi", "town"),
    ("PC06BS", "Điện lực Bình Sơn", "PC Quảng Ngãi", "rural"),
    ("PC10TH", "Điện lực TP Thanh Hóa", "PC Thanh Hóa", "town"),
    ("PC10SS", "Điện lực Sầm Sơn", "PC Thanh Hóa", "town"),
    ("PC10BS", "Điện lực Bỉm Sơn", "PC Thanh Hóa", "town"),
    ("PC10HH", "Điện lực Hoằng Hóa", "PC Thanh Hóa", "rural"),
    ("PC10TX", "Điện lực Thọ Xuân", "PC Thanh Hóa", "rural"),
    ("PC10NS", "Điện lực Nghi Sơn", "PC Thanh Hóa", "town"),
]

# Streets and wards per unit, to generate believable addresses.
PLACES: dict[str, tuple[list[str], list[str], str]] = {
    "PC04HC": (
        ["Lê Duẩn", "Trần Phú", "Bạch Đằng", "Hoàng Diệu"],
        ["P. Hải Châu", "P. Thạch Thang"],
        "TP Đà Nẵng",
    ),
    "PC04LC": (
        ["Tôn Đức Thắng", "Âu Cơ", "Nguyễn Lương Bằng"],
        ["P. Hòa Khánh Bắc", "P. Hòa Minh"],
        "TP Đà Nẵng",
    ),
    "PC04TK": (["Điện Biên Phủ", "Hà Huy Tập", "Lê Độ"], ["P. Chính Gián", "P. Thạc Gián"], "TP Đà Nẵng"),
    "PC04ST": (
        ["Ngô Quyền", "Phạm Văn Đồng", "Lê Văn Duyệt"],
        ["P. An Hải Bắc", "P. Phước Mỹ"],
        "TP Đà Nẵng",
    ),
    "PC04CL": (["Ông Ích Đường", "Cách Mạng Tháng 8"], ["P. Khuê Trung", "P. Hòa Thọ Đông"], "TP Đà Nẵng"),
    "PC04NH": (["Lê Văn Hiến", "Trần Đại Nghĩa"], ["P. Mỹ An", "P. Hòa Hải"], "TP Đà Nẵng"),
    "PC04HV": (["Thôn Phú Sơn", "Thôn La Bông"], ["Xã Hòa Khương", "Xã Hòa Tiến"], "TP Đà Nẵng"),
    "PC05TK": (
        ["Phan Chu Trinh", "Hùng Vương", "Trần Cao Vân"],
        ["P. Tân Thạnh", "P. An Mỹ"],
        "TP Tam Kỳ, Quảng Nam",
    ),
    "PC05HA": (
        ["Trần Hưng Đạo", "Nguyễn Duy Hiệu", "Lý Thường Kiệt"],
        ["P. Minh An", "P. Cẩm Phô"],
        "TP Hội An, Quảng Nam",
    ),
    "PC05DB": (
        ["Trần Nhân Tông", "Nguyễn Văn Trỗi"],
        ["P. Vĩnh Điện", "P. Điện An"],
        "TX Điện Bàn, Quảng Nam",
    ),
    "PC05DX": (["Thôn Mỹ Sơn", "Thôn Chiêm Sơn"], ["Xã Duy Trinh", "Xã Duy Sơn"], "H. Duy Xuyên, Quảng Nam"),
    "PC05NT": (
        ["Thôn Tam Nghĩa", "Thôn Tam Hiệp"],
        ["Xã Tam Nghĩa", "Xã Tam Hiệp"],
        "H. Núi Thành, Quảng Nam",
    ),
    "PC05TB": (
        ["Thôn Bình Minh", "Thôn Bình Triều"],
        ["Xã Bình Minh", "Xã Bình Triều"],
        "H. Thăng Bình, Quảng Nam",
    ),
    "PC05DL": (["Thôn Ái Nghĩa", "Thôn Đại Hiệp"], ["Xã Đại Hiệp", "Xã Đại Nghĩa"], "H. Đại Lộc, Quảng Nam"),
    "PC06QN": (["Quang Trung", "Hai Bà Trưng"], ["P. Trần Phú", "P. Nghĩa Chánh"], "TP Quảng Ngãi"),
    "PC06BS": (
        ["Thôn Đông Yên", "Thôn Phước Thiện"],
        ["Xã Bình Thuận", "Xã Bình Trị"],
        "H. Bình Sơn, Quảng Ngãi",
    ),
    "PC10TH": (["Lê Lai", "Bà Triệu", "Trần Phú"], ["P. Điện Biên", "P. Ba Đình"], "TP Thanh Hóa"),
    "PC10SS": (["Hồ Xuân Hương", "Lê Lợi"], ["P. Trường Sơn", "P. Bắc Sơn"], "TP Sầm Sơn, Thanh Hóa"),
    "PC10BS": (["Trần Phú", "Nguyễn Huệ"], ["P. Ba Đình", "P. Lam Sơn"], "TX Bỉm Sơn, Thanh Hóa"),
    "PC10HH": (
        ["Thôn Nghĩa Trang", "Thôn Hoằng Đạo"],
        ["Xã Hoằng Đạo", "Xã Hoằng Quang"],
        "H. Hoằng Hóa, Thanh Hóa",
    ),
    "PC10TX": (["Thôn Xuân Lai", "Thôn Xuân Hòa"], ["Xã Xuân Lai", "Xã Xuân Hòa"], "H. Thọ Xuân, Thanh Hóa"),
    "PC10NS": (["Đường 513", "Đường Tỉnh lộ 2"], ["P. Hải Hòa", "P. Nguyên Bình"], "TX Nghi Sơn, Thanh Hóa"),
}
