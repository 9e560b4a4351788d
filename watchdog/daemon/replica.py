"""Replicas of one daemon on a shared PostgreSQL log: who leads, and how the others wait.

One replica leads by holding the store's lease (``PostgresEventStore.acquire_lease``: one row,
renewed on the database's clock, its epoch rising at every change of holder). Only the leader
polls, evaluates, appends and delivers; every append it makes is fenced by the lease in the same
transaction, so a leader paused or cut off past its lease appends nothing when it wakes.

The others follow: they fold every event the leader appends into their own engine and outbox
(the same fold a restart does), woken by ``NOTIFY`` (only a wake-up: they read the log itself, so
a lost notification costs a poll interval, not an event), and try the lease every
``retry_every``. A takeover is then a start of a warm daemon: the log after the follower's
cursor, the transitions it derived that the old leader never appended, and the outbox's owed
sends (a send the old leader began without an outcome is reconciled first where the receiver
can be asked).

Takeover bound: a dead leader's lease runs out within ``lease_ttl`` of its last renewal; a
follower tries every ``retry_every`` (``lease_ttl / 5``); then it starts (verify since the
last verified point, fold the tail, catch-up poll). With the default 10 s lease: about 12 s,
measured by ``make soak-ha`` (``max_takeover_s``).

A deposed leader (its renewal finds another holder, or an append is refused) stops at once and
exits with EX_TEMPFAIL (75): systemd restarts it, as a follower. A send cannot be fenced like an
append, so before each send the leader asks the database whether the lease is still its own.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import timedelta

from watchdog.model.errors import StoreError

log = logging.getLogger("watchdog.daemon.replica")


def holder_name(replica: str | None) -> str:
    """``host/pid`` (or ``name/pid``): a restarted process is a new holder, so it waits out the
    lease of the one it replaces, which may only be paused."""
    return f"{replica or socket.gethostname()}/{os.getpid()}"


@dataclass
class Replica:
    store: object                   # a store with acquire_lease / lease / holds_lease (PostgreSQL)
    holder: str
    ttl: timedelta
    role: str = "follower"          # follower -> leader -> deposed (or stopped: released)
    epoch: int | None = None
    leader: str | None = None       # the holder last seen leading
    leader_epoch: int | None = None
    renewed_at: float | None = None  # monotonic time of the last renewal that held
    took_over_s: float | None = None  # seconds from taking the lease to leading (the last takeover)
    caught_up_at: float | None = None  # monotonic time a follower's fold last reached the head
    _listener: object = None

    @property
    def renew_every(self) -> float:
        return self.ttl.total_seconds() / 3

    @property
    def retry_every(self) -> float:
        return self.ttl.total_seconds() / 5

    @property
    def leading(self) -> bool:
        return self.role == "leader"

    async def try_lead(self) -> bool:
        """Take the lease if it is free or expired; note who leads if not. A plain read first:
        while another replica's lease runs, a follower takes no lock its appends would wait on."""
        seen = await asyncio.to_thread(self.store.lease)
        if seen is None or not seen[2] or seen[0] == self.holder:
            epoch = await asyncio.to_thread(self.store.acquire_lease, self.holder, self.ttl.total_seconds())
            if epoch is not None:
                return self._lead(epoch)
            seen = await asyncio.to_thread(self.store.lease)      # who took it meanwhile
        if seen is not None:
            self.leader, self.leader_epoch = seen[0], seen[1]
        return False

    def _lead(self, epoch: int) -> bool:
        self.role, self.epoch, self.leader, self.leader_epoch = "leader", epoch, self.holder, epoch
        self.renewed_at = time.monotonic()
        log.warning("leading: took the leader lease (epoch %d) as %s", epoch, self.holder,
                    extra={"epoch": epoch, "holder": self.holder})
        return True

    async def renew(self) -> bool:
        """Renew the lease; False when another replica holds it now (deposed). A database that
        cannot be reached raises StoreError: the lease may still be ours, and the fence keeps a
        lost one from writing."""
        epoch = await asyncio.to_thread(self.store.acquire_lease, self.holder, self.ttl.total_seconds())
        if epoch is None:
            return False
        if epoch != self.epoch:       # expired with nobody taking it: ours again, a new term
            log.warning("the leader lease lapsed and was taken again (epoch %s -> %d)", self.epoch, epoch)
            self.epoch = self.leader_epoch = epoch
        self.renewed_at = time.monotonic()
        return True

    async def may_send(self) -> bool:
        """Asked before each notification is sent: still the leader on the database's clock."""
        if not self.leading:
            return False
        try:
            return await asyncio.to_thread(self.store.holds_lease)
        except StoreError as exc:
            log.error("cannot confirm the leader lease before a send (%s): holding it back", exc)
            return False

    async def release(self) -> None:
        """A clean stop ends the term at once: a follower need not wait out the lease."""
        if not self.leading:
            return
        self.role = "stopped"
        try:
            await asyncio.to_thread(self.store.release_lease)
        except StoreError as exc:
            log.warning("could not release the leader lease (%s): it lapses in %s", exc, self.ttl)

    def deposed(self) -> None:
        self.role = "deposed"

    def caught_up(self) -> None:
        """The follower's fold has just read to the head of the log."""
        self.caught_up_at = time.monotonic()

    def lag_reasons(self, cursor: int, head_seq: int) -> list[str]:
        """Why this replica is not ready as a replica: a follower that has not caught up with the
        log within ``lease_ttl`` (its lag bound: it could not take over warm), or a deposed
        leader. A leader's own lag is the daemon's business (its deadman)."""
        if self.role == "deposed":
            return [f"deposed: {self.holder} lost the leader lease to {self.leader}"]
        if self.role != "follower":
            return []
        behind = time.monotonic() - self.caught_up_at if self.caught_up_at is not None else None
        if behind is None or behind > self.ttl.total_seconds():
            return [f"following: {max(0, head_seq - cursor)} events behind the log, not caught up "
                    f"within the lag bound ({self.ttl}, the lease)"]
        return []

    def describe(self, cursor: int, head_seq: int) -> dict:
        """For /readyz and /metrics: who leads, the epoch and how far behind the log this
        replica's fold is (events)."""
        return {"role": self.role, "holder": self.holder, "leader": self.leader,
                "epoch": self.leader_epoch, "lag_events": max(0, head_seq - cursor),
                "lease_ttl": str(self.ttl), "last_takeover_s": self.took_over_s}

    # ---- the wake-up: LISTEN on an asyncio connection of its own ----
    @property
    def listening(self) -> bool:
        return self._listener is not None

    async def listen(self, url: str, channel: str) -> None:
        """LISTEN for appends. A failure leaves the follower polling every ``retry_every``."""
        try:
            import psycopg
            self._listener = await psycopg.AsyncConnection.connect(url, autocommit=True)
            await self._listener.execute(f"LISTEN {channel}")
        except Exception as exc:                 # the wake-up is an optimisation, never a need
            log.warning("no LISTEN on the event log (%s): following by polling every %.1fs",
                        type(exc).__name__, self.retry_every)
            await self.close()

    async def wait(self, timeout: float) -> None:
        """Until an append is notified or ``timeout`` seconds pass."""
        if self._listener is None:
            await asyncio.sleep(timeout)
            return
        try:
            async for _ in self._listener.notifies(timeout=timeout, stop_after=1):
                pass
        except Exception as exc:
            log.warning("the LISTEN connection failed (%s): following by polling", type(exc).__name__)
            await self.close()

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                await listener.close()
            except Exception:
                pass
