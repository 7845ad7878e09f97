"""Service types, their processing steps and committed times (in working days).

Low-voltage new supply: 3 working days in towns, 5 in rural areas (EVNCPC commitment quoted in the
seeds). The other limits are this project's configured targets, to be confirmed with the business.
"""

from __future__ import annotations

from dataclasses import dataclass

STEPS: dict[str, str] = {
    "received": "Tiếp nhận yêu cầu",
    "survey": "Khảo sát",
    "supply_plan": "Thỏa thuận/Phương án cấp điện",
    "contract_signing": "Ký hợp đồng",
    "installation": "Thi công",
    "meter": "Treo tháo công tơ / Nghiệm thu đóng điện",
    "done": "Hoàn thành",
}
ALL_STEPS = list(STEPS)


@dataclass(frozen=True)
class ServiceType:
    key: str
    name: str
    town_days: int
    rural_days: int
    steps: tuple[str, ...]

    def committed_days(self, area: str) -> int:
        return self.rural_days if area == "rural" else self.town_days


SERVICE_TYPES: dict[str, ServiceType] = {
    s.key: s
    for s in (
        ServiceType("lv_new_supply", "Cấp điện mới hạ áp", 3, 5, tuple(ALL_STEPS)),
        ServiceType("mv_new_supply", "Cấp điện mới trung áp", 7, 10, tuple(ALL_STEPS)),
        ServiceType(
            "capacity_change",
            "Thay đổi công suất",
            3,
            5,
            ("received", "survey", "contract_signing", "meter", "done"),
        ),
        ServiceType(
            "meter_relocation",
            "Thay đổi vị trí thiết bị đo đếm",
            5,
            7,
            ("received", "survey", "installation", "meter", "done"),
        ),
        ServiceType(
            "contract_renewal",
            "Gia hạn hợp đồng mua bán điện",
            2,
            2,
            ("received", "contract_signing", "done"),
        ),
        ServiceType(
            "owner_change", "Thay đổi chủ thể hợp đồng", 3, 3, ("received", "contract_signing", "done")
        ),
        ServiceType(
            "contract_termination",
            "Chấm dứt hợp đồng mua bán điện",
            3,
            3,
            ("received", "contract_signing", "meter", "done"),
        ),
    )
}
