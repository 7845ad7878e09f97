"""Desk settings from environment variables, validated once at start-up.

Development defaults let `make run` work with no set-up; with APP_ENV=production the desk refuses to
start while any secret still has its development value.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlparse, urlsplit

from agent_desk.training.settings import TrainingConfigError, TrainingSettings
from common.env_numbers import env_number
from common.production import AppEnvError, refuse_development_defaults
from common.production import app_env as read_app_env

ROOT = Path(__file__).resolve().parent.parent

DEV_SECRET_KEY = "dev-desk-secret-key-change-me"  # noqa: S105 (development default, refused in production)
DEV_RASA_TOKEN = "dev-rasa-token"  # noqa: S105
DEV_SIGNING_TOKEN = "dev-signing-token"  # noqa: S105
DEV_API_TOKEN = "dev-desk-api-token"  # noqa: S105


class ConfigError(ValueError):
    """A setting is missing or invalid; the message says which and how to fix it."""


# Customers' files (agent_desk/customer_file_views.py): the hosts the desk fetches a Zalo file from
# (a host or any subdomain of it: Zalo's CDN), the bot token that resolves a Telegram file_id.
DEFAULT_CUSTOMER_FILE_HOSTS = ("zdn.vn", "zadn.vn", "zalo.me")
_HOST = re.compile(
    r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$"
)
_TELEGRAM_TOKEN = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{20,100}$")  # as connectors/telegram/config.py


def _hosts(env: dict[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """Host names (a name with at least one dot: it and its subdomains) or IP addresses, separated by
    commas or spaces. No scheme, port, path or wildcard: "zdn.vn" already covers photo.zdn.vn."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    hosts: list[str] = []
    for item in re.split(r"[,\s]+", raw.lower()):
        if not item:
            continue
        try:
            hosts.append(str(ipaddress.ip_address(item.strip("[]"))))
            continue
        except ValueError:
            pass
        if not _HOST.match(item.rstrip(".")):
            raise ConfigError(
                f"{name} must list host names like zdn.vn or IP addresses (no scheme, port, path or *),"
                f" got {item!r}"
            )
        hosts.append(item.rstrip("."))
    return tuple(hosts) or default


def _int(env: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    return env_number(env, name, default, int, ConfigError, lo=minimum, kind="an integer number of seconds")


def _float(env: dict[str, str], name: str, default: float, minimum: float) -> float:
    return env_number(env, name, default, float, ConfigError, lo=minimum)


def _url(env: dict[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    parsed = urlparse(value)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _origin(env: dict[str, str], name: str) -> str:
    """An http(s) origin (scheme, host, optional port; no path), normalised as browsers send it in
    the Origin header: lower case, default port dropped. Empty when unset."""
    value = env.get(name, "").strip()
    if not value:
        return ""
    parsed = urlsplit(value)
    problem = f"{name} must be an http(s) origin without path, like https://desk.example.vn; got {value!r}"
    try:
        port = parsed.port
    except ValueError:
        raise ConfigError(problem) from None
    scheme = parsed.scheme.lower()
    if (
        scheme not in {"http", "https"}
        or not parsed.hostname
        or "@" in parsed.netloc
        or parsed.path not in {"", "/"}
        or "?" in value
        or "#" in value
    ):
        raise ConfigError(problem)
    host = f"[{parsed.hostname}]" if ":" in parsed.hostname else parsed.hostname
    default_port = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default_port else "")


def _flag(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be 1 or 0, got {env[name]!r}")


def async_db_url(url: str) -> str:
    """Map plain SQLAlchemy URLs onto the asyncio drivers installed with the project."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


def rabbitmq_url(env: dict[str, str]) -> str:
    """RABBITMQ_URL, or one built from the RABBITMQ_HOST/PORT/USERNAME/PASSWORD given to Rasa."""
    url = env.get("RABBITMQ_URL", "").strip()
    host = env.get("RABBITMQ_HOST", "").strip()
    if url or not host:
        return url
    user = quote(env.get("RABBITMQ_USERNAME", "guest"), safe="")
    password = quote(env.get("RABBITMQ_PASSWORD", "guest"), safe="")
    port = env.get("RABBITMQ_PORT", "").strip() or "5672"
    return f"amqp://{user}:{password}@{host}:{port}/"


@dataclass(frozen=True)
class Settings:
    app_env: str = "development"
    port: int = 8900
    host: str = "127.0.0.1"
    database_url: str = f"sqlite+aiosqlite:///{ROOT / 'var' / 'agent_desk.db'}"
    secret_key: str = DEV_SECRET_KEY
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_token: str = DEV_RASA_TOKEN
    signing_url: str = "http://127.0.0.1:8800"
    signing_token: str = DEV_SIGNING_TOKEN
    # Bearer token of the desk's API for other processes (agent_desk/service_api.py).
    api_token: str = DEV_API_TOKEN
    rasa_events_db: Path = ROOT / "var" / "rasa_events.db"
    rabbitmq_url: str = ""
    rabbitmq_queue: str = "agent_desk_events"
    rabbitmq_exchange: str = "rasa-exchange"
    domain_path: Path = ROOT / "domain.yml"
    queue_timeout: int = 300
    agent_idle_timeout: int = 600
    sweep_interval: float = 5.0
    broker_poll_interval: float = 0.5
    session_lifetime: int = 12 * 3600  # absolute: a login never lasts longer
    idle_timeout: int = 1800  # a session unused this long is refused
    # The address agents type (behind an HTTPS proxy the desk itself sees http and its own Host):
    # used for the Origin/Referer check and to make cookies Secure. Empty: the Host header is used.
    public_origin: str = ""
    demo_enabled: bool = True  # /demo; off by default in production
    # Satisfaction survey after a hand-back (agent_desk/csat.py): on; a score is taken for
    # csat_answer_window seconds after the question, a comment for csat_comment_window after the score.
    csat_enabled: bool = True
    csat_answer_window: int = 24 * 3600
    csat_comment_window: int = 300
    # Assignment (agent_desk/assignment.py): off, agents take conversations from the queue themselves.
    auto_assign: bool = False
    max_conversations_per_agent: int = 3  # auto-assignment gives nobody more than this many at once
    # Bot failures (agent_desk/bot_failures.py): the connectors' store the desk tails, and how often.
    bot_failures_url: str = f"sqlite+aiosqlite:///{ROOT / 'var' / 'bot_failures.db'}"
    bot_failures_poll_interval: float = 1.0
    # Channel windows (agent_desk/channel_window.py): Zalo's, and the warning before it ends.
    zalo_window_hours: int = 48
    window_warn_minutes: int = 120
    # Customers' files (agent_desk/customer_file_views.py): Telegram's Bot API (getFile, file
    # download; no token: Telegram files cannot be opened), the hosts Zalo files are fetched from,
    # the largest file fetched and how long a fetch may take.
    telegram_bot_token: str = field(default="", repr=False)
    telegram_api_base_url: str = "https://api.telegram.org"
    customer_file_hosts: tuple[str, ...] = DEFAULT_CUSTOMER_FILE_HOSTS
    customer_file_max_mb: int = 10
    customer_file_timeout: float = 15.0
    # The trainers' workbench (agent_desk/training/settings.py): project, git branch, models, Rasa servers.
    training: TrainingSettings = field(default_factory=TrainingSettings)
    # Extra hosts (besides localhost) that may be served without TLS, e.g. in tests.
    insecure_hosts: tuple[str, ...] = field(default=("127.0.0.1", "localhost", "::1"))

    @property
    def production(self) -> bool:
        return self.app_env == "production"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> Settings:
        env = dict(os.environ if env is None else env)
        try:
            app_env = read_app_env(env)  # the one reading every process shares (common/production.py)
        except AppEnvError as exc:
            raise ConfigError(str(exc)) from None
        database_url = env.get("DESK_DATABASE_URL", "").strip() or cls.database_url
        values: dict[str, object] = {
            "app_env": app_env,
            "port": _int(env, "DESK_PORT", 8900, 1),
            "host": env.get("DESK_HOST", "127.0.0.1").strip() or "127.0.0.1",
            "database_url": async_db_url(database_url),
            "secret_key": env.get("DESK_SECRET_KEY", "") or DEV_SECRET_KEY,
            "rasa_url": _url(env, "RASA_URL", "http://127.0.0.1:5005"),
            "rasa_token": env.get("RASA_AUTH_TOKEN", "") or DEV_RASA_TOKEN,
            "signing_url": _url(env, "SIGNING_SERVICE_URL", "http://127.0.0.1:8800"),
            "signing_token": env.get("SIGNING_SERVICE_TOKEN", "") or DEV_SIGNING_TOKEN,
            "api_token": env.get("DESK_API_TOKEN", "") or DEV_API_TOKEN,
            "rasa_events_db": Path(env.get("RASA_EVENTS_DB", "") or ROOT / "var" / "rasa_events.db"),
            "rabbitmq_url": rabbitmq_url(env),
            # The desk's own queue, bound to Rasa's fanout exchange: it does not take events away
            # from other consumers of Rasa's queues.
            "rabbitmq_queue": env.get("DESK_RABBITMQ_QUEUE", "").strip() or "agent_desk_events",
            "rabbitmq_exchange": env.get("RABBITMQ_EXCHANGE", "").strip() or "rasa-exchange",
            "domain_path": Path(env.get("DESK_DOMAIN_PATH", "") or ROOT / "domain.yml"),
            "queue_timeout": _int(env, "HANDOFF_QUEUE_TIMEOUT", 300, 1),
            "agent_idle_timeout": _int(env, "AGENT_IDLE_TIMEOUT", 600, 1),
            "sweep_interval": _float(env, "DESK_SWEEP_INTERVAL", 5.0, 0.05),
            "broker_poll_interval": _float(env, "DESK_BROKER_POLL_INTERVAL", 0.5, 0.05),
            "session_lifetime": _int(env, "DESK_SESSION_LIFETIME", 12 * 3600, 60),
            "idle_timeout": _int(env, "DESK_IDLE_TIMEOUT_S", 1800, 60),
            "public_origin": _origin(env, "DESK_PUBLIC_ORIGIN"),
            # The public web chat is a test page: a production desk serves it only when asked to.
            "demo_enabled": _flag(env, "DESK_DEMO_ENABLED", app_env != "production"),
            "csat_enabled": _flag(env, "DESK_CSAT_ENABLED", True),
            "csat_answer_window": _int(env, "DESK_CSAT_ANSWER_WINDOW", 24 * 3600, 60),
            "csat_comment_window": _int(env, "DESK_CSAT_COMMENT_WINDOW", 300, 1),
            "auto_assign": _flag(env, "DESK_AUTO_ASSIGN", False),
            "max_conversations_per_agent": env_number(
                env,
                "DESK_MAX_CONVERSATIONS_PER_AGENT",
                3,
                int,
                ConfigError,
                lo=1,
                hi=50,
                kind="a whole number",
            ),
        }
        values.update(
            {
                "bot_failures_url": async_db_url(
                    env.get("BOT_FAILURES_URL", "").strip() or f"sqlite:///{ROOT / 'var' / 'bot_failures.db'}"
                ),
                "bot_failures_poll_interval": _float(env, "DESK_BOT_FAILURES_POLL_INTERVAL", 1.0, 0.05),
                "zalo_window_hours": env_number(
                    env, "ZALO_WINDOW_HOURS", 48, int, ConfigError, lo=1, hi=168, kind="a whole number"
                ),
                "window_warn_minutes": env_number(
                    env,
                    "DESK_WINDOW_WARN_MINUTES",
                    120,
                    int,
                    ConfigError,
                    lo=0,
                    hi=1440,
                    kind="a whole number of minutes",
                ),
            }
        )
        values.update(
            {
                "telegram_bot_token": env.get("TELEGRAM_BOT_TOKEN", "").strip(),
                "telegram_api_base_url": _url(env, "TELEGRAM_API_BASE_URL", "https://api.telegram.org"),
                "customer_file_hosts": _hosts(env, "DESK_CUSTOMER_FILE_HOSTS", DEFAULT_CUSTOMER_FILE_HOSTS),
                "customer_file_max_mb": env_number(
                    env, "DESK_CUSTOMER_FILE_MAX_MB", 10, int, ConfigError, lo=1, hi=50, kind="a whole number"
                ),
                "customer_file_timeout": _float(env, "DESK_CUSTOMER_FILE_TIMEOUT", 15.0, 1.0),
            }
        )
        try:
            values["training"] = TrainingSettings.from_env(env, str(values["rasa_url"]))
        except TrainingConfigError as exc:
            raise ConfigError(str(exc)) from None
        values.update(overrides)
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        if len(self.secret_key) < 16:
            raise ConfigError("DESK_SECRET_KEY must be at least 16 characters long")
        if self.production:
            refuse_development_defaults(
                {
                    "DESK_SECRET_KEY": self.secret_key == DEV_SECRET_KEY,
                    "RASA_AUTH_TOKEN": self.rasa_token == DEV_RASA_TOKEN,
                    "SIGNING_SERVICE_TOKEN": self.signing_token == DEV_SIGNING_TOKEN,
                    "DESK_API_TOKEN": self.api_token == DEV_API_TOKEN,
                },
                ConfigError,
                "APP_ENV=production but these settings still have their development defaults: {names}."
                " Set them to secret values.",
            )
        if self.telegram_bot_token and not _TELEGRAM_TOKEN.match(self.telegram_bot_token):
            raise ConfigError("TELEGRAM_BOT_TOKEN does not look like a bot token (<digits>:<secret>)")
        if self.production and not self.telegram_api_base_url.startswith("https://"):
            raise ConfigError("TELEGRAM_API_BASE_URL must be an https:// URL when APP_ENV=production")
        if self.rabbitmq_url and urlparse(self.rabbitmq_url).scheme not in {"amqp", "amqps"}:
            raise ConfigError(f"RABBITMQ_URL must be an amqp:// or amqps:// URL, got {self.rabbitmq_url!r}")
