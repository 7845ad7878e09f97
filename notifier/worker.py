"""The notifier's loop: scan, fan out, claim what is due, send it, record the outcome.

Stopping (SIGTERM, Ctrl-C) finishes the calls under way and hands back what was claimed but not
started, so a restart neither loses nor repeats a notice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from common.metrics import NOTIFICATIONS
from signing_service import deliveries, notice_scan, notifications
from signing_service.context import Context
from signing_service.deliveries import Job

from .channels import Outcome, Router
from .settings import NotifierSettings

log = logging.getLogger(__name__)
RECOVER_EVERY_S = 30.0


@dataclass
class Counters:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    by_via: dict[str, int] = field(default_factory=dict)
    last_loop: float = 0.0


class Worker:
    def __init__(self, c: Context, router: Router, settings: NotifierSettings) -> None:
        self.c = c
        self.router = router
        self.settings = settings
        self.counters = Counters()
        self.stopping = asyncio.Event()
        self._sem = asyncio.Semaphore(settings.concurrency)

    async def run(self) -> None:
        next_scan = next_recover = 0.0
        while not self.stopping.is_set():
            now = time.monotonic()
            self.counters.last_loop = time.time()
            try:
                if now >= next_recover:
                    await deliveries.recover(self.c)
                    next_recover = now + RECOVER_EVERY_S
                if now >= next_scan:
                    await notice_scan.scan(self.c)
                    next_scan = now + self.settings.scan_seconds
                await notifications.fan_out(self.c)
                jobs = await deliveries.claim(self.c, self.settings.batch)
            except Exception:  # the database is down, say: keep trying, say so in the log
                log.exception("notifier loop failed; retrying in 5 s")
                await self._sleep(5.0)
                continue
            if not jobs:
                await self._sleep(self.settings.poll_seconds)
                continue
            await asyncio.gather(*(self._one(job) for job in jobs))

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _one(self, job: Job) -> None:
        try:
            async with self._sem:
                if self.stopping.is_set():
                    await deliveries.release(self.c, [job])
                    return
                if not await deliveries.start(self.c, job):
                    return
                try:
                    outcome = await self.router.deliver(job)
                except Exception as exc:  # a bug or an unexpected reply: retried, never lost
                    log.exception("notice %d: unexpected error", job.delivery_id)
                    outcome = Outcome("retry", None, type(exc).__name__[:40])
                state = await deliveries.finish(self.c, job, outcome.result, outcome.via, outcome.error)
        except Exception:  # the database went away mid-batch: the lease brings the notice back
            log.exception(
                "notice %d: could not record its progress; its lease will return it", job.delivery_id
            )
            return
        self._count(job, outcome, state)

    def _count(self, job: Job, outcome: Outcome, state: str) -> None:
        # Label by the channel that carried it (bounded: the router's few channels).
        NOTIFICATIONS.labels(outcome.via or "none", {"pending": "retried"}.get(state, state)).inc()
        if state == "sent":
            self.counters.sent += 1
            via = outcome.via or "?"
            self.counters.by_via[via] = self.counters.by_via.get(via, 0) + 1
            log.info("notice %d (%s) sent by %s", job.delivery_id, job.kind, via)
        elif state == "pending":
            self.counters.retried += 1
            log.info("notice %d (%s) will be retried: %s", job.delivery_id, job.kind, outcome.error)
        else:
            self.counters.failed += 1
            log.warning(
                "notice %d (%s) failed: %s (%s)", job.delivery_id, job.kind, outcome.error, outcome.via
            )
