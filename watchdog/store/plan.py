"""Turning a batch of ``NewEvent``s into chained rows: the logic both stores share.

Deduplication happens here, before hashing, against what the log already holds (``lookup``) and
what this batch has already planned. Each series has one primary source: another source may fill
dates the primary lacks but never flips a value the log holds, so two sources cannot ping-pong.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from watchdog.model.errors import ChainBroken
from watchdog.model.events import (
    OBSERVATION_RECORDED, OBSERVATION_REVISED, ZERO_HASH, NewEvent, StoredEvent, canonical_json, chain_hash,
    observation_key, revision_key,
)
from watchdog.market.series import SERIES

Lookup = Callable[[str], "dict | None"]


@dataclass
class Head:
    seq: int
    hash: str
    recorded_at: str


def _fact(payload: dict) -> tuple:
    return (payload["value"], payload["unit"], tuple(sorted(payload.get("attributes", {}).items())))


def _may_revise(new_source: str, old_source: str, series: str) -> bool:
    spec = SERIES.get(series)
    primary = spec.primary_source if spec else None
    return new_source == old_source or new_source == primary


def resolve(event: NewEvent, lookup: Lookup) -> NewEvent | None:
    """The event to append for ``event``, or None when it would add nothing new."""
    if lookup(event.key) is None:
        return event
    if event.type != OBSERVATION_RECORDED:
        return None                      # idempotent: this key is already in the log
    new = event.payload
    latest, revision = lookup(event.key), 0
    while (nxt := lookup(revision_key(new["series"], new["date"], revision + 1))) is not None:
        latest, revision = nxt, revision + 1
    if _fact(latest) == _fact(new) or not _may_revise(new["source"], latest["source"], new["series"]):
        return None
    payload = dict(new, revision=revision + 1, previous_value=latest["value"],
                   previous_attributes=latest.get("attributes", {}))
    # A revision became public when it was revised, not when the original was: unless the source
    # dates its vintage (ALFRED), it is published when this log learned it (None -> recorded_at).
    vintage = new.get("provenance", {}).get("vintage")
    return NewEvent(type=OBSERVATION_REVISED, key=revision_key(new["series"], new["date"], revision + 1),
                    payload=payload, published_at=event.published_at if vintage else None)


def plan_rows(events: Sequence[NewEvent], head: Head, now: str,
              lookup: Lookup) -> tuple[list[StoredEvent], list[tuple]]:
    """Chained rows for ``events`` after ``head``: the stored events, and the same rows as
    insert parameters (seq, type, key, published_at, recorded_at, canonical payload text, hash);
    ``recorded_at`` never decreases with seq and a fact cannot have been published after this
    log learned it. This is the append hot path (``make bench``): new keys skip ``resolve``, the
    payload text is the one ``NewEvent`` took, and nothing else is built per row."""
    recorded_at = max(now, head.recorded_at)
    planned: dict[str, dict] = {}

    def seen(key: str) -> dict | None:
        return planned[key] if key in planned else lookup(key)

    stored: list[StoredEvent] = []
    params: list[tuple] = []
    seq, prev = head.seq, head.hash
    sha256 = hashlib.sha256
    for event in events:
        key = event.key
        if key in planned or lookup(key) is not None:
            event = resolve(event, seen)
            if event is None:
                continue
            key = event.key
        seq += 1
        published = event.published_at
        if published is None or published > recorded_at:
            published = recorded_at
        text = event.text
        if text is None:
            text = canonical_json(event.payload)
        type_ = event.type
        digest = sha256(f"{prev}\n{seq}\n{type_}\n{key}\n{published}\n{recorded_at}\n{text}"
                        .encode("utf-8")).hexdigest()       # = events.chain_hash, inlined
        stored.append(StoredEvent(seq, type_, key, published, recorded_at, event.payload, digest))
        params.append((seq, type_, key, published, recorded_at, text, digest))
        planned[key] = event.payload
        prev = digest
    return stored, params


__all__ = ["Head", "resolve", "plan_rows", "observation_key", "OBSERVATION_REVISED"]


def check_copied(rows: Sequence[tuple], head: tuple[int, str]) -> None:
    """Raise ``ChainBroken`` unless ``rows`` continue the chain at ``head`` exactly: dense seq,
    each hash the hash of its contents and the previous hash."""
    prev_seq, prev = head
    for seq, type_, key, published, recorded, payload, digest in rows:
        if seq != prev_seq + 1:
            raise ChainBroken(prev_seq + 1, f"the copy does not continue the log (next row has seq {seq})")
        if chain_hash(prev, seq, type_, key, published, recorded, payload) != digest:
            raise ChainBroken(seq, "hash does not match the row's contents and the previous hash")
        prev_seq, prev = seq, digest


def walk_chain(rows: Iterable[tuple], start: tuple[int, str, str] = (0, ZERO_HASH, ""),
               head_hash: str | None = None) -> tuple[int, str]:
    """Re-hash ``rows`` (seq, type, key, published_at, recorded_at, payload text, hash; in seq
    order) continuing the chain after ``start`` = (seq, hash, recorded_at) of the row before
    them; with ``head_hash``, one row must carry it (an anchor taken earlier still stands).
    Returns the head (seq, hash); raises ``ChainBroken`` naming the first bad seq. Both stores'
    ``verify`` walk their rows through here."""
    prev_seq, prev, last_recorded = start
    anchor_found = head_hash is None
    for seq, type_, key, published, recorded, payload, digest in rows:
        if seq != prev_seq + 1:
            raise ChainBroken(prev_seq + 1, f"missing row (next row has seq {seq})")
        if recorded < last_recorded:
            raise ChainBroken(seq, "recorded_at decreases")
        if chain_hash(prev, seq, type_, key, published, recorded, payload) != digest:
            raise ChainBroken(seq, "hash does not match the row's contents and the previous hash")
        anchor_found = anchor_found or digest == head_hash
        prev_seq, prev, last_recorded = seq, digest, recorded
    if not anchor_found:
        raise ChainBroken(prev_seq + 1, f"no row has the anchored hash {head_hash}")
    return prev_seq, prev
