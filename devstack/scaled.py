"""`make run-scaled`: the production topology on one machine.

nginx in front of N Rasa instances (each with SANIC_WORKERS workers) sharing the Redis lock store,
the PostgreSQL tracker store and the RabbitMQ event broker; N action servers and N signing-service
replicas on PostgreSQL behind the same nginx. Every generated file lives under var/scaled/.

The class `ScaledStack` is also what the fault tests (tests/faults/) start, on free ports and
with their own databases, so what is tested is what `make run-scaled` runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from devstack import processes

ROOT = processes.ROOT
NGINX = os.environ.get("NGINX_BIN", "/usr/sbin/nginx")
NGINX_TEMPLATE = ROOT / "deploy" / "nginx.conf.j2"
ENDPOINTS_TEMPLATE = ROOT / "deploy" / "endpoints.scaled.yml"

# Shared servers of the development machine (see design.md); overridable by environment.
PG_HOST = os.environ.get("SCALED_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("SCALED_PG_PORT", "5432"))
PG_USER = os.environ.get("SCALED_PG_USER", "postgres")
PG_PASSWORD = os.environ.get("SCALED_PG_PASSWORD", "")
REDIS_HOST = os.environ.get("SCALED_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("SCALED_REDIS_PORT", "6379"))
RABBIT_HOST = os.environ.get("SCALED_RABBITMQ_HOST", "127.0.0.1")
RABBIT_PORT = int(os.environ.get("SCALED_RABBITMQ_PORT", "5672"))


@dataclass
class ScaledPorts:
    """Ports of every process; nginx's four entries are the only ones clients use."""

    public: int = 7080  # nginx: channel webhooks + document links (the internet-facing port)
    rasa_api: int = 7005  # nginx -> Rasa HTTP API (desk, tests)
    signing_api: int = 7800  # nginx -> signing service replicas
    actions_api: int = 7055  # nginx -> action servers
    rasa: list[int] = field(default_factory=lambda: [7015, 7025])
    actions: list[int] = field(default_factory=lambda: [7065, 7075])
    signing: list[int] = field(default_factory=lambda: [7810, 7820])
    desk: int = 7900  # nginx -> agent desk processes (staff only)
    desks: list[int] = field(default_factory=lambda: [7910, 7920])
    notifiers: list[int] = field(default_factory=lambda: [7830, 7840])

    @classmethod
    def free(cls, rasa: int = 2, actions: int = 2, signing: int = 2) -> ScaledPorts:
        fp = processes.free_port
        return cls(
            public=fp(),
            rasa_api=fp(),
            signing_api=fp(),
            actions_api=fp(),
            rasa=[fp() for _ in range(rasa)],
            actions=[fp() for _ in range(actions)],
            signing=[fp() for _ in range(signing)],
            desk=fp(),
            desks=[fp(), fp()],
            notifiers=[fp(), fp()],
        )

    @classmethod
    def default(cls, rasa: int = 2, actions: int = 2, signing: int = 2) -> ScaledPorts:
        return cls(
            rasa=[7015 + 10 * i for i in range(rasa)],
            actions=[7065 + 10 * i for i in range(actions)],
            signing=[7810 + 10 * i for i in range(signing)],
        )


def require_nginx() -> None:
    if not Path(NGINX).exists():
        raise SystemExit(
            f"nginx not found at {NGINX}. Install Debian's package:\n"
            "    sudo apt-get install -y nginx\n"
            "(or set NGINX_BIN to another nginx binary)."
        )


def pg_connect(dbname: str = "postgres"):  # type: ignore[no-untyped-def]
    import psycopg2

    conn = psycopg2.connect(
        host=PG_HOST,
        port=PG_PORT,
        user=PG_USER,
        password=PG_PASSWORD or None,
        dbname=dbname,
        connect_timeout=5,
    )
    conn.autocommit = True
    return conn


def ensure_database(name: str) -> None:
    """Create a PostgreSQL database if it does not exist (names are ours: [a-z0-9_] only)."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    conn = pg_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


def drop_database(name: str) -> None:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    conn = pg_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        conn.close()


def delete_rabbit(queue: str, exchange: str, env: dict[str, str]) -> None:
    """Delete a queue and exchange of a finished test stack (best effort: RabbitMQ may be down)."""
    import asyncio

    import aio_pika

    async def run() -> None:
        conn = await aio_pika.connect(
            host=RABBIT_HOST,
            port=RABBIT_PORT,
            login=env["RABBITMQ_USERNAME"],
            password=env["RABBITMQ_PASSWORD"],
            timeout=5,
        )
        async with conn:
            ch = await conn.channel()
            await ch.queue_delete(queue)
            await ch.exchange_delete(exchange)

    try:
        asyncio.run(run())
    except Exception as e:  # noqa: BLE001 (cleanup must not hide the test's own result)
        print(f"!! could not delete RabbitMQ queue {queue}: {e}", file=sys.stderr)


def render_nginx(**values: object) -> str:
    """deploy/nginx.conf.j2 with every variable required (a typo fails loudly)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(NGINX_TEMPLATE.parent),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 (an nginx config, not HTML)
    )
    return env.get_template(NGINX_TEMPLATE.name).render(**values)


def compose_nginx_conf() -> str:
    """The nginx config of deploy/compose.yml (service names instead of 127.0.0.1)."""
    return render_nginx(
        user=None,
        worker_processes="auto",
        foreground=True,
        listen_host="0.0.0.0",  # noqa: S104
        run_dir="/var/cache/nginx",
        log_dir="/var/log/nginx",
        public_port=8080,
        rasa_api_port=5005,
        signing_api_port=8800,
        actions_api_port=5055,
        rasa_servers=["rasa-1:5005", "rasa-2:5005"],
        action_servers=["actions-1:5055", "actions-2:5055"],
        signing_servers=["signing-1:8800", "signing-2:8800"],
        # compose.yml runs one desk and publishes its port itself (staff only).
        desk_port=8900,
        desk_servers=[],
    )


@dataclass
class ScaledConfig:
    var_dir: Path = ROOT / "var" / "scaled"
    ports: ScaledPorts = field(default_factory=ScaledPorts.default)
    sanic_workers: int = 1
    tracker_db: str = "cskh_scaled_tracker"
    signing_db: str = "cskh_scaled_signing"
    # Alphanumeric (Rasa drops other prefixes); separates this stack's locks from other users of Redis.
    lock_prefix: str = "cskhscaled"
    lock_db: int = 1
    redis_port: int = REDIS_PORT
    queue: str = "cskh_scaled_events"
    desk_db: str = "cskh_scaled_desk"  # shared by the desk processes
    exchange: str = "cskh-scaled-exchange"
    # Lower than Rasa's 60 s so a conversation whose instance died mid-turn is free again sooner;
    # must stay above the longest turn (signing a batch takes a few seconds).
    lock_lifetime: int = 20
    with_desk: bool = True
    # Rasa's SQL store replays the whole session every turn; the windowed one keeps turns flat.
    tracker_store: str = "deploy.windowed_tracker_store.WindowedSQLTrackerStore"
    window_turns: int = 3  # as endpoints.yml: rules look back one user turn, actions two
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_tests(cls, var_dir: Path, **kw: object) -> ScaledConfig:
        """Free ports, unique databases/queue/lock prefix: no collision with `make run-scaled`."""
        tag = uuid.uuid4().hex[:10]
        return cls(
            var_dir=var_dir,
            ports=ScaledPorts.free(),
            tracker_db=f"cskh_t_{tag}",
            signing_db=f"cskh_s_{tag}",
            lock_prefix=f"cskht{tag}",
            queue=f"cskh_test_{tag}",
            desk_db=f"cskh_d_{tag}",
            exchange=f"cskh-test-{tag}",
            **kw,  # type: ignore[arg-type]
        )


class ScaledStack:
    """Generates the configuration and runs every process of the scaled topology."""

    def __init__(self, config: ScaledConfig, model: Path) -> None:
        self.cfg = config
        self.model = model
        self.log_dir = config.var_dir / "log"
        self.nginx_dir = config.var_dir / "nginx"
        self.procs: dict[str, processes.Proc] = {}
        self.nginx: processes.Proc | None = None
        p = config.ports
        # processes.Ports of the first replicas; URLs below point at nginx, not at a replica.
        self.env = processes.stack_env(
            processes.Ports(rasa=p.rasa[0], actions=p.actions[0], signing=p.signing[0], desk=p.desk),
            {
                "DATABASE_URL": self.signing_database_url(),
                "OUTBOX_PATH": str(config.var_dir / "outbox" / "messages.jsonl"),
                "SIGNING_VAR_DIR": str(config.var_dir / "signing"),
                "SIGNING_SERVICE_URL": f"http://127.0.0.1:{p.signing_api}",
                "PUBLIC_BASE_URL": f"http://127.0.0.1:{p.public}",
                "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{p.actions_api}/webhook",
                "RASA_URL": f"http://127.0.0.1:{p.rasa_api}",
                "RASA_EVENTS_DB": str(config.var_dir / "rasa_events.db"),
                "TRACKER_STORE_TYPE": config.tracker_store,
                "TRACKER_WINDOW_TURNS": str(config.window_turns),
                "TRACKER_DB_HOST": PG_HOST,
                "TRACKER_DB_PORT": str(PG_PORT),
                "TRACKER_DB_NAME": config.tracker_db,
                "TRACKER_DB_USER": PG_USER,
                "TRACKER_DB_PASSWORD": PG_PASSWORD,
                "TRACKER_DB_LOGIN_DB": "postgres",
                "LOCK_STORE_HOST": REDIS_HOST,
                "LOCK_STORE_PORT": str(config.redis_port),
                "LOCK_STORE_DB": str(config.lock_db),
                "LOCK_STORE_PASSWORD": "",
                "LOCK_STORE_KEY_PREFIX": config.lock_prefix,
                "RABBITMQ_HOST": RABBIT_HOST,
                "RABBITMQ_PORT": str(RABBIT_PORT),
                "RABBITMQ_USERNAME": os.environ.get("RABBITMQ_USERNAME", "guest"),
                "RABBITMQ_PASSWORD": os.environ.get("RABBITMQ_PASSWORD", "guest"),
                "RABBITMQ_QUEUE": config.queue,
                "RABBITMQ_EXCHANGE": config.exchange,
                "DESK_RABBITMQ_QUEUE": config.queue,
                "DESK_DATABASE_URL": self.database_url(config.desk_db),
                "SANIC_WORKERS": str(config.sanic_workers),
                "TICKET_LOCK_LIFETIME": str(config.lock_lifetime),
                **config.extra_env,
            },
        )

    # -- configuration -------------------------------------------------------------------------

    def signing_database_url(self) -> str:
        return self.database_url(self.cfg.signing_db)

    @staticmethod
    def database_url(name: str) -> str:
        auth = PG_USER + (f":{PG_PASSWORD}" if PG_PASSWORD else "")
        return f"postgresql://{auth}@{PG_HOST}:{PG_PORT}/{name}"

    def desk_queues(self) -> list[str]:
        """One RabbitMQ queue per desk process, each bound to the fanout exchange: every desk sees
        every event (desks sharing a queue would split the events). The first is the queue Rasa
        declares; the desk declares the others."""
        q = self.cfg.queue
        return [q if i == 1 else f"{q}_desk{i}" for i in range(1, len(self.cfg.ports.desks) + 1)]

    @property
    def endpoints_path(self) -> Path:
        return self.cfg.var_dir / "endpoints.yml"

    @property
    def nginx_conf(self) -> Path:
        return self.nginx_dir / "nginx.conf"

    def render(self) -> None:
        """Write var/scaled/{endpoints.yml, nginx/nginx.conf}."""
        self.cfg.var_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.nginx_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ENDPOINTS_TEMPLATE, self.endpoints_path)
        p = self.cfg.ports
        # The replicas listen on BIND_HOST (loopback by default); nginx is the one public listener.
        host = processes.client_host(self.env)
        local = lambda ports: [f"{host}:{port}" for port in ports]  # noqa: E731
        self.nginx_conf.write_text(
            render_nginx(
                # As root the workers drop to nobody; otherwise nginx keeps the caller's user.
                user="nobody nogroup" if os.geteuid() == 0 else None,
                worker_processes=1,
                foreground=True,
                listen_host="127.0.0.1",
                run_dir=self.nginx_dir,
                log_dir=self.log_dir,
                public_port=p.public,
                rasa_api_port=p.rasa_api,
                signing_api_port=p.signing_api,
                actions_api_port=p.actions_api,
                rasa_servers=local(p.rasa),
                action_servers=local(p.actions),
                signing_servers=local(p.signing),
                desk_port=p.desk,
                desk_servers=local(p.desks) if self.cfg.with_desk else [],
            )
        )

    # -- processes -----------------------------------------------------------------------------

    def signing_procs(self) -> list[processes.Proc]:
        out = []
        for i, port in enumerate(self.cfg.ports.signing, 1):
            base = processes.signing_service(processes.Ports(signing=port), self.env, self.log_dir)
            out.append(
                dataclasses.replace(base, name=f"signing-{i}", log_path=self.log_dir / f"signing-{i}.log")
            )
        return out

    def action_procs(self) -> list[processes.Proc]:
        out = []
        for i, port in enumerate(self.cfg.ports.actions, 1):
            base = processes.action_server(processes.Ports(actions=port), self.env, self.log_dir)
            out.append(
                dataclasses.replace(base, name=f"actions-{i}", log_path=self.log_dir / f"actions-{i}.log")
            )
        return out

    def notifier_procs(self) -> list[processes.Proc]:
        """Two notifiers on the shared PostgreSQL database: SKIP LOCKED gives each notice to one."""
        return [
            processes.notifier(processes.Ports(notifier=port), self.env, self.log_dir, name=f"notifier-{i}")
            for i, port in enumerate(self.cfg.ports.notifiers, 1)
        ]

    def rasa_proc(self, i: int) -> processes.Proc:
        port = self.cfg.ports.rasa[i - 1]
        base = processes.rasa_server(
            processes.Ports(rasa=port),
            self.env,
            self.log_dir,
            self.model,
            endpoints=str(self.endpoints_path),
        )
        return dataclasses.replace(base, name=f"rasa-{i}", log_path=self.log_dir / f"rasa-{i}.log")

    def nginx_proc(self) -> processes.Proc:
        return processes.Proc(
            "nginx",
            [
                NGINX,
                "-p",
                str(self.nginx_dir),
                "-c",
                str(self.nginx_conf),
                "-e",
                str(self.log_dir / "nginx-error.log"),
            ],
            f"http://127.0.0.1:{self.cfg.ports.public}/health",
            self.env,
            self.log_dir / "nginx.log",
        )

    def desk_procs(self) -> list[processes.Proc]:
        """The desk processes (behind nginx on ports.desk): one PostgreSQL database, own queues."""
        if not self.cfg.with_desk or not (ROOT / "agent_desk" / "__main__.py").exists():
            return []
        out = []
        for i, (port, queue) in enumerate(zip(self.cfg.ports.desks, self.desk_queues(), strict=True), 1):
            env = {**self.env, "DESK_RABBITMQ_QUEUE": queue}
            base = processes.agent_desk(processes.Ports(desk=port), env, self.log_dir)
            out.append(
                dataclasses.replace(
                    base, name=f"agent-desk-{i}", log_path=self.log_dir / f"agent-desk-{i}.log"
                )
            )
        return out

    def _start(self, procs: Iterable[processes.Proc], timeout: float, say: bool) -> None:
        procs = list(procs)
        for p in procs:
            if say:
                print(f">> starting {p.name} (log: {p.log_path})", flush=True)
            self.procs[p.name] = p
            p.start()
        for p in procs:
            p.wait_healthy(timeout)
            if say:
                print(f">> {p.name} is up", flush=True)

    def start(self, say: bool = False) -> None:
        require_nginx()
        ensure_database(self.cfg.tracker_db)
        ensure_database(self.cfg.signing_db)
        self.render()
        check = subprocess.run(
            [
                NGINX,
                "-t",
                "-q",
                "-p",
                str(self.nginx_dir),
                "-c",
                str(self.nginx_conf),
                "-e",
                str(self.log_dir / "nginx-error.log"),
            ],
            capture_output=True,
            text=True,
        )
        if check.returncode:
            raise RuntimeError(f"nginx rejected {self.nginx_conf}:\n{check.stderr}")
        self.nginx = self.nginx_proc()
        self._start([self.nginx], 20, say)
        signing = self.signing_procs()
        # The first replica creates the schema and loads the demo data; the others then join it,
        # so two replicas never race on an empty database.
        self._start(signing[:1], 120, say)
        self._start(signing[1:] + self.action_procs(), 120, say)
        # Rasa instances load the model in parallel (the slow part: ~20-60 s each on 2 cores).
        self._start([self.rasa_proc(i) for i in range(1, len(self.cfg.ports.rasa) + 1)], 400, say)
        self._start(self.notifier_procs(), 120, say)
        desks = self.desk_procs()
        if desks:
            ensure_database(self.cfg.desk_db)
        for desk in desks:  # one after the other: the first creates the desk's schema
            # The desk is a convenience here: the assistant serves customers without it.
            try:
                self._start([desk], 120, say)
            except (RuntimeError, TimeoutError) as e:
                print(f"!! {desk.name} did not start ({e}); continuing without it", file=sys.stderr)
                desk.stop()
                self.procs.pop(desk.name, None)

    def restart(self, name: str, timeout: float = 400) -> float:
        """Start a stopped/killed process again; returns seconds until healthy."""
        old = self.procs[name]
        old.stop()
        fresh = dataclasses.replace(old, popen=None, _log=None)
        t0 = time.monotonic()
        self._start([fresh], timeout, say=False)
        return time.monotonic() - t0

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Kill a process group abruptly (a crash, not a shutdown)."""
        p = self.procs[name]
        if p.popen and p.popen.poll() is None:
            os.killpg(p.popen.pid, sig)
            p.popen.wait(30)

    def stop(self) -> None:
        for p in reversed(list(self.procs.values())):
            p.stop()
        self.procs.clear()

    def drop_databases(self) -> None:
        """Remove what a test stack left on the shared servers (databases, queue, exchange)."""
        for db in (self.cfg.tracker_db, self.cfg.signing_db, self.cfg.desk_db):
            drop_database(db)
        for queue in self.desk_queues()[1:]:
            delete_rabbit(queue, self.cfg.exchange, self.env)
        delete_rabbit(self.cfg.queue, self.cfg.exchange, self.env)

    def summary(self) -> str:
        p = self.cfg.ports
        running = [n for n in self.procs if n.startswith("agent-desk-")]
        desk = (
            f"  agent desk    : http://127.0.0.1:{p.desk}/ (nginx -> desks {running} on {p.desks})\n"
            if running
            else ""
        )
        return (
            f"\nThe scaled assistant is running ({len(p.rasa)} Rasa x {self.cfg.sanic_workers} workers, "
            f"{len(p.actions)} action servers, {len(p.signing)} signing replicas, nginx).\n"
            f"  public (nginx): http://127.0.0.1:{p.public}/webhooks/{{zalo,telegram}}/webhook, "
            "/v1/documents/N/file\n"
            f"  REST channel  : http://127.0.0.1:{p.rasa_api}/webhooks/rest/webhook (internal)\n"
            f"  Rasa API      : http://127.0.0.1:{p.rasa_api}/  (?token={self.env['RASA_AUTH_TOKEN']})\n"
            f"  signing API   : http://127.0.0.1:{p.signing_api}/v1\n"
            f"  notifiers     : {len(p.notifiers)} on the signing DB (SKIP LOCKED), health on {p.notifiers}\n"
            f"{desk}"
            f"  trackers      : postgresql://{PG_HOST}:{PG_PORT}/{self.cfg.tracker_db}\n"
            f"  signing DB    : postgresql://{PG_HOST}:{PG_PORT}/{self.cfg.signing_db}\n"
            f"  locks         : redis://{REDIS_HOST}:{self.cfg.redis_port}/{self.cfg.lock_db} "
            f"prefix {self.cfg.lock_prefix}\n"
            f"  events        : amqp://{RABBIT_HOST}:{RABBIT_PORT} queue {self.cfg.queue}\n"
            f"  configs, logs : {self.cfg.var_dir}\n"
            "Press Ctrl-C to stop."
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rasa", type=int, default=int(os.environ.get("SCALED_RASA", 2)), help="Rasa instances (default 2)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("SANIC_WORKERS", 1)),
        help="Sanic workers per Rasa instance (default 1; each loads the model)",
    )
    parser.add_argument("--actions", type=int, default=2, help="action servers (default 2)")
    parser.add_argument("--signing", type=int, default=2, help="signing-service replicas (default 2)")
    parser.add_argument(
        "--print-compose-nginx",
        action="store_true",
        help="print the nginx config for deploy/compose.yml and exit",
    )
    args = parser.parse_args(argv)
    if args.print_compose_nginx:
        print(compose_nginx_conf(), end="")
        return 0
    require_nginx()
    from devstack import model

    model_file = model.ensure_model()
    cfg = ScaledConfig(
        ports=ScaledPorts.default(args.rasa, args.actions, args.signing),
        sanic_workers=args.workers,
    )
    stack = ScaledStack(cfg, model_file)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        stack.start(say=True)
        print(stack.summary(), flush=True)
        while not stopping:
            for p in stack.procs.values():
                if p.popen and p.popen.poll() is not None:
                    print(f"!! {p.name} exited with {p.popen.returncode}; see {p.log_path}", file=sys.stderr)
                    return 1
            time.sleep(0.5)
        return 0
    finally:
        print("\n>> stopping", flush=True)
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
