"""Service types, their processing steps and committed times (in working days).

The committed times are data, not code: `service_limits.yml` next to this module holds one entry per
service with its source. Only low-voltage new supply (3 working days in towns, 5 in rural areas) is
quoted from the seeds; every other limit is a placeholder to be confirmed by the power company.
An operator may point SERVICE_LIMITS_PATH at a file of their own (same shape). The file is read once,
at import, and checked: every service present, positive whole numbers of working days, a source or
`placeholder: true`; anything else raises ValueError naming the file, the service and the field.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from common import yaml_files

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

DEFAULT_LIMITS_PATH = Path(__file__).with_name("service_limits.yml")
LIMITS_ENV = "SERVICE_LIMITS_PATH"
MAX_DAYS = 365

# The ten services EVN signs documents for electronically (seeds/004_fe750ab2e2b0796c.txt), medium-voltage
# supply counted twice (the power company or the customer invests in the works): key, name, steps.
SERVICES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("lv_new_supply", "Cấp điện mới hạ áp", tuple(ALL_STEPS)),
    ("mv_new_supply", "Cấp điện mới trung áp (ngành điện đầu tư công trình)", tuple(ALL_STEPS)),
    ("capacity_change", "Thay đổi công suất", ("received", "survey", "contract_signing", "meter", "done")),
    (
        "meter_relocation",
        "Thay đổi vị trí thiết bị đo đếm",
        ("received", "survey", "installation", "meter", "done"),
    ),
    ("contract_renewal", "Gia hạn hợp đồng mua bán điện", ("received", "contract_signing", "done")),
    ("owner_change", "Thay đổi chủ thể hợp đồng", ("received", "contract_signing", "done")),
    (
        "contract_termination",
        "Chấm dứt hợp đồng mua bán điện",
        ("received", "contract_signing", "meter", "done"),
    ),
    ("purpose_change", "Thay đổi mục đích sử dụng điện", ("received", "survey", "contract_signing", "done")),
    ("quota_change", "Thay đổi định mức sử dụng điện", ("received", "contract_signing", "done")),
    (
        "info_change",
        "Thay đổi thông tin đăng ký (bao gồm cả thay đổi hình thức thanh toán)",
        ("received", "contract_signing", "done"),
    ),
    ("mv_customer_supply", "Cấp điện mới trung áp (khách hàng đầu tư công trình)", tuple(ALL_STEPS)),
)


@dataclass(frozen=True)
class ServiceLimit:
    """Committed working days of one service and where the figures come from."""

    town_days: int
    rural_days: int
    source: str | None = None
    quote: str | None = None
    placeholder: bool = False
    note: str | None = None


@dataclass(frozen=True)
class ServiceType:
    key: str
    name: str
    town_days: int
    rural_days: int
    steps: tuple[str, ...]
    limit: ServiceLimit | None = None

    def committed_days(self, area: str) -> int:
        return self.rural_days if area == "rural" else self.town_days


def _text(path: Path, key: str, entry: Mapping[str, Any], field: str) -> str | None:
    value = entry.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(
            f"service limits {path}: service {key!r}: {field} must be non-empty text, got {value!r}"
        )
    return value.strip()


def _entry(path: Path, key: str, entry: Any) -> ServiceLimit:
    if not isinstance(entry, dict):
        raise ValueError(f"service limits {path}: service {key!r} must be a mapping, got {entry!r}")
    unknown = sorted(set(entry) - {"town_days", "rural_days", "source", "quote", "placeholder", "note"})
    if unknown:
        raise ValueError(f"service limits {path}: service {key!r}: unknown field(s) {', '.join(unknown)}")
    days = {}
    for field in ("town_days", "rural_days"):
        value = entry.get(field)
        # bool is an int in Python: `true` is not a number of days.
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
            raise ValueError(
                f"service limits {path}: service {key!r}: {field} must be a positive whole number of "
                f"working days (1..{MAX_DAYS}), got {value!r}"
            )
        days[field] = value
    placeholder = entry.get("placeholder", False)
    if not isinstance(placeholder, bool):
        raise ValueError(f"service limits {path}: service {key!r}: placeholder must be true or false")
    source = _text(path, key, entry, "source")
    if source is None and not placeholder:
        raise ValueError(
            f"service limits {path}: service {key!r}: give its source (where the limit is stated) "
            "or mark it `placeholder: true` with a note"
        )
    if source is not None and placeholder:
        raise ValueError(
            f"service limits {path}: service {key!r}: a limit with a source is not a placeholder"
        )
    return ServiceLimit(
        town_days=days["town_days"],
        rural_days=days["rural_days"],
        source=source,
        quote=_text(path, key, entry, "quote"),
        placeholder=placeholder,
        note=_text(path, key, entry, "note"),
    )


def load_limits(path: Path, keys: Iterable[str]) -> dict[str, ServiceLimit]:
    """The limits of `path` for every service in `keys`; ValueError saying what is wrong and where."""
    try:
        raw = yaml_files.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"service limits {path}: cannot read the file ({e.strerror})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ValueError(f"service limits {path}: not a valid UTF-8 YAML file ({e})") from None
    services = raw.get("services") if isinstance(raw, dict) else None
    if not isinstance(services, dict):
        raise ValueError(f"service limits {path}: expected a top-level `services:` mapping of service keys")
    wanted = list(keys)
    unknown = sorted(set(map(str, services)) - set(wanted))
    if unknown:
        raise ValueError(f"service limits {path}: unknown service(s) {', '.join(unknown)}")
    missing = [k for k in wanted if k not in services]
    if missing:
        raise ValueError(
            f"service limits {path}: service {missing[0]!r} is missing (every service needs a limit)"
        )
    return {key: _entry(path, key, services[key]) for key in wanted}


def limits_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    value = env.get(LIMITS_ENV, "").strip()
    return Path(value) if value else DEFAULT_LIMITS_PATH


def build_service_types(path: Path) -> dict[str, ServiceType]:
    limits = load_limits(path, (key for key, _, _ in SERVICES))
    return {
        key: ServiceType(key, name, limits[key].town_days, limits[key].rural_days, steps, limits[key])
        for key, name, steps in SERVICES
    }


SERVICE_TYPES: dict[str, ServiceType] = build_service_types(limits_path())
