"""Configuration from environment variables, validated once at start-up.

Development defaults let `make run` work with no set-up; with APP_ENV=production every development
default (token, secret, generated dev CA) is refused so a misconfigured deployment cannot start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from common.env_numbers import env_number
from common.production import AppEnvError, app_env, refuse_development_defaults

from .quiet_hours import DEFAULT as DEFAULT_QUIET_HOURS
from .quiet_hours import QuietHours

DEV_TOKEN = "dev-signing-token"  # noqa: S105 - a public development default, refused in production
DEV_SECRET = "dev-signing-secret-key-change-me"  # noqa: S105
DEV_SEAL_PASSWORD = "dev-seal-password"  # noqa: S105


class ConfigError(ValueError):
    """Raised with an operator-readable message when the environment is not usable."""


@dataclass(frozen=True)
class Settings:
    app_env: str
    var_dir: Path
    database_url: str
    outbox_path: Path
    token: str
    secret_key: str
    public_base_url: str
    link_ttl_seconds: int
    seal_p12_path: Path
    seal_p12_password: str
    seal_ca_path: Path
    generate_dev_ca: bool
    demo_data: bool
    otp_sends_per_hour: int = 5
    otp_sends_per_day: int = 10
    name_lookups_per_conversation: int = 5
    name_lookup_conversation_window_s: int = 600
    name_lookups_per_unit: int = 60
    name_lookup_unit_window_s: int = 60
    code_lookups_per_conversation: int = 30
    code_lookup_misses_per_conversation: int = 10
    code_lookup_window_s: int = 3600
    verification_ttl_days: int = 30
    sign_after_verify_seconds: int = 600
    otp_sessions_per_chat_user_per_day: int = 10
    otp_wrong_per_chat_user_per_day: int = 10
    otp_freeze_after_wrong_per_day: int = 15
    # Notifications due inside these hours (Vietnam time) are held until they end; None: no quiet hours.
    quiet_hours: QuietHours | None = QuietHours.parse(DEFAULT_QUIET_HOURS)
    # At most this many notices per chat user and Vietnam day; more wait for the next morning.
    notify_daily_cap: int = 4
    # Temporary errors are retried with backoff this many times, then the delivery is failed.
    notify_max_attempts: int = 6
    # How long a notifier holds a claimed notice; past it another notifier takes it back.
    notify_lease_seconds: int = 120
    # RFC 3161 timestamp authority (PAdES B-T) and the root its tokens chain to; None: B-B only.
    tsa_url: str | None = None
    tsa_root_path: Path | None = None
    # PAdES B-LT: may the service download CRLs from the distribution points of the seal's and the
    # TSA's certificates (hourly, kept in memory)? The development CA's CRL is issued in-process.
    seal_ltv_fetch: bool = False

    @property
    def production(self) -> bool:
        return self.app_env == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    return env_number(env, name, default, int, ConfigError, lo=lo, hi=hi, kind="an integer")


def load_settings(env: Mapping[str, str] | None = None, port: int | None = None) -> Settings:
    """Read and check the configuration; raise ConfigError naming the variable that is wrong."""
    env = os.environ if env is None else env
    try:
        environment = app_env(env)
    except AppEnvError as e:
        raise ConfigError(str(e)) from None
    production = environment == "production"
    var_dir = Path(env.get("SIGNING_VAR_DIR", "").strip() or "var").resolve()

    database_url = env.get("DATABASE_URL", "").strip() or f"sqlite:///{var_dir / 'signing.db'}"
    scheme = urlsplit(database_url).scheme.split("+")[0]
    if scheme not in {"sqlite", "postgresql", "postgres"}:
        raise ConfigError(f"DATABASE_URL must be sqlite:///... or postgresql://..., got scheme {scheme!r}")

    outbox = Path(env.get("OUTBOX_PATH", "").strip() or var_dir / "outbox" / "messages.jsonl")
    token = env.get("SIGNING_SERVICE_TOKEN", "").strip() or DEV_TOKEN
    secret = env.get("SIGNING_SECRET_KEY", "").strip() or DEV_SECRET
    if len(token) < 12:
        raise ConfigError("SIGNING_SERVICE_TOKEN must be at least 12 characters")
    if len(secret) < 16:
        raise ConfigError("SIGNING_SECRET_KEY must be at least 16 characters")

    base = env.get("PUBLIC_BASE_URL", "").strip() or f"http://127.0.0.1:{port or 8800}"
    if urlsplit(base).scheme not in {"http", "https"} or not urlsplit(base).netloc:
        raise ConfigError(f"PUBLIC_BASE_URL must be an absolute http(s) URL, got {base!r}")

    p12 = env.get("SEAL_P12_PATH", "").strip()
    ca = env.get("SEAL_CA_PATH", "").strip()
    seal_password = env.get("SEAL_P12_PASSWORD", "").strip() or DEV_SEAL_PASSWORD
    generate_dev_ca = not p12
    if p12 and not ca:
        raise ConfigError("SEAL_CA_PATH (the CA certificate, PEM) is required with SEAL_P12_PATH")

    if production:
        refuse_development_defaults(
            {
                "SIGNING_SERVICE_TOKEN": token == DEV_TOKEN,
                "SIGNING_SECRET_KEY": secret == DEV_SECRET,
                "SEAL_P12_PATH (+ SEAL_CA_PATH, SEAL_P12_PASSWORD)": generate_dev_ca,
                "SEAL_P12_PASSWORD": not generate_dev_ca and seal_password == DEV_SEAL_PASSWORD,
                "PUBLIC_BASE_URL": not env.get("PUBLIC_BASE_URL", "").strip(),
            },
            ConfigError,
            "APP_ENV=production refuses development defaults; set: {names}",
        )
        if base.startswith("http://"):
            raise ConfigError("PUBLIC_BASE_URL must be https:// in production")

    tsa_url = env.get("TSA_URL", "").strip() or None
    tsa_root = env.get("TSA_ROOT_PATH", "").strip() or None
    if tsa_url and (urlsplit(tsa_url).scheme not in {"http", "https"} or not urlsplit(tsa_url).netloc):
        raise ConfigError(
            f"TSA_URL must be an http(s) URL of an RFC 3161 timestamp authority, got {tsa_url!r}"
        )
    if tsa_root and not Path(tsa_root).is_file():
        raise ConfigError(
            f"TSA_ROOT_PATH must be the PEM file of the TSA's root certificate; {tsa_root} is missing"
        )

    seal_ltv_fetch = _seal_ltv_fetch(env, generate_dev_ca, tsa_url, tsa_root)

    keys = var_dir / "keys"
    return Settings(
        app_env=environment,
        var_dir=var_dir,
        database_url=database_url,
        outbox_path=outbox.resolve(),
        token=token,
        secret_key=secret,
        public_base_url=base.rstrip("/"),
        # Document links: one hour by default; the bot issues fresh ones whenever asked.
        link_ttl_seconds=_int(env, "LINK_TTL_SECONDS", 3600, 60, 30 * 86400),
        seal_p12_path=Path(p12) if p12 else keys / "seal.p12",
        seal_p12_password=seal_password,
        seal_ca_path=Path(ca) if ca else keys / "ca.pem",
        generate_dev_ca=generate_dev_ca,
        # Per request, over all its sessions. Test stacks that replay many signing conversations on one
        # demo request may raise them; the defaults are the policy.
        otp_sends_per_hour=_int(env, "OTP_MAX_SENDS_PER_HOUR", 5, 1, 100),
        otp_sends_per_day=_int(env, "OTP_MAX_SENDS_PER_DAY", 10, 1, 1000),
        # Name lookups (docs/security.md §4): per conversation, and a ceiling per power unit for
        # callers who switch conversations. Counted per process.
        name_lookups_per_conversation=_int(env, "NAME_LOOKUPS_PER_CONVERSATION", 5, 1, 1000),
        name_lookup_conversation_window_s=_int(env, "NAME_LOOKUP_CONVERSATION_WINDOW_SECONDS", 600, 1, 86400),
        name_lookups_per_unit=_int(env, "NAME_LOOKUPS_PER_UNIT", 60, 1, 100_000),
        name_lookup_unit_window_s=_int(env, "NAME_LOOKUP_UNIT_WINDOW_SECONDS", 60, 1, 86400),
        # Code lookups per conversation (all, and the ones that found nothing) in a sliding window.
        code_lookups_per_conversation=_int(env, "CODE_LOOKUPS_PER_CONVERSATION", 30, 1, 10_000),
        code_lookup_misses_per_conversation=_int(env, "CODE_LOOKUP_MISSES_PER_CONVERSATION", 10, 1, 10_000),
        code_lookup_window_s=_int(env, "CODE_LOOKUP_WINDOW_SECONDS", 3600, 1, 86400),
        # Verified chat users (docs/security.md §0): how long a verification lasts, and how long after
        # an OTP verification one signing may reuse that code.
        verification_ttl_days=_int(env, "VERIFICATION_TTL_DAYS", 30, 1, 365),
        sign_after_verify_seconds=_int(env, "SIGN_AFTER_VERIFY_SECONDS", 600, 0, 3600),
        # OTP budget per attacker: per chat user and day, and the wrong codes after which a request's
        # OTPs are frozen until staff unfreeze them.
        otp_sessions_per_chat_user_per_day=_int(env, "OTP_SESSIONS_PER_CHAT_USER_PER_DAY", 10, 1, 1000),
        otp_wrong_per_chat_user_per_day=_int(env, "OTP_WRONG_PER_CHAT_USER_PER_DAY", 10, 1, 1000),
        otp_freeze_after_wrong_per_day=_int(env, "OTP_FREEZE_AFTER_WRONG_PER_DAY", 15, 1, 1000),
        demo_data=env.get("SIGNING_DEMO_DATA", "1" if not production else "0").strip()
        not in {"0", "false", ""},
        quiet_hours=_quiet_hours(env),
        notify_daily_cap=_int(env, "NOTIFY_DAILY_CAP", 4, 1, 100),
        notify_max_attempts=_int(env, "NOTIFY_MAX_ATTEMPTS", 6, 1, 50),
        notify_lease_seconds=_int(env, "NOTIFY_LEASE_SECONDS", 120, 5, 3600),
        tsa_url=tsa_url,
        tsa_root_path=Path(tsa_root) if tsa_root else None,
        seal_ltv_fetch=seal_ltv_fetch,
    )


def _seal_ltv_fetch(
    env: Mapping[str, str], dev_seal: bool, tsa_url: str | None, tsa_root: str | None
) -> bool:
    """SEAL_LTV_FETCH: 1 lets the service download CRLs named in the seal's and the TSA's certificates
    (PAdES B-LT). Default: on with the development seal (only the TSA's CRL is downloaded), off with
    a CA-issued seal (SEAL_P12_PATH), whose operator opts in."""
    raw = env.get("SEAL_LTV_FETCH", "").strip().lower()
    if raw not in {"", "0", "1", "true", "false", "yes", "no"}:
        raise ConfigError(f"SEAL_LTV_FETCH must be 1 or 0, got {raw!r}")
    if not raw:
        return dev_seal
    fetch = raw in {"1", "true", "yes"}
    if fetch and not (tsa_url and tsa_root):
        raise ConfigError(
            "SEAL_LTV_FETCH=1 needs TSA_URL and TSA_ROOT_PATH: long-term validation data (PAdES B-LT) "
            "builds on a timestamp (B-T)"
        )
    return fetch


def _quiet_hours(env: Mapping[str, str]) -> QuietHours | None:
    try:
        return QuietHours.parse(env.get("NOTIFY_QUIET_HOURS", DEFAULT_QUIET_HOURS))
    except ValueError as e:
        raise ConfigError(f"NOTIFY_QUIET_HOURS: {e}") from None
