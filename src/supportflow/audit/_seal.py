"""Seals: the digest of the log's head, and the record that lets an auditor check it.

A seal lists the head of every aggregate in the log up to a position: its id, its last
version, the log position of that event and the event's hash. The list (the *manifest*) is
stored in the log as a `SealRecord`; its SHA-256 is the *digest* the auditor keeps elsewhere.
Given the digest, a later audit finds the record, checks that it hashes to the digest (so the
record is authentic), and compares each head with the log: a deleted last event, a changed
last event or a row moved to another log position is named by ticket and position.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

import attrs
from eventsourcing.domain import Aggregate

from .._records import NAMESPACE

__all__ = ["Head", "SealRecord", "manifest_text", "parse_manifest", "seal_id"]

FORMAT = "supportflow-seal/1"


def seal_id(digest: str) -> UUID:
    """The id of the seal record whose manifest hashes to `digest`."""
    return uuid.uuid5(NAMESPACE, f"seal:{digest}")


@attrs.frozen
class Head:
    """The last event of one aggregate at or before the sealed log position."""

    kind: str
    version: int
    log_position: int
    hash: str


def manifest_text(position: int, events: int, heads: Mapping[UUID, Head]) -> str:
    """The manifest: a header line, then one line per aggregate, sorted by id."""
    lines = [f"{FORMAT} position={position} events={events}"]
    for oid in sorted(heads, key=str):
        head = heads[oid]
        lines.append(f"{oid} {head.kind} {head.version} {head.log_position} {head.hash}")
    return "\n".join(lines) + "\n"


def parse_manifest(text: str) -> tuple[int, int, dict[UUID, Head]]:
    """`(position, events, heads)` from a manifest; `ValueError` if it is malformed."""
    lines = text.splitlines()
    if not lines:
        raise ValueError("empty seal manifest")
    header = lines[0].split()
    if len(header) != 3 or header[0] != FORMAT:
        raise ValueError(f"unknown seal format {lines[0][:60]!r}")
    fields = dict(part.split("=", 1) for part in header[1:])
    heads: dict[UUID, Head] = {}
    for line in lines[1:]:
        oid, kind, version, log_position, digest = line.split()
        heads[UUID(oid)] = Head(kind, int(version), int(log_position), digest)
    return int(fields["position"]), int(fields["events"]), heads


def digest_of(manifest: str) -> str:
    return hashlib.sha256(manifest.encode("utf-8")).hexdigest()


class SealRecord(Aggregate):
    """A seal kept in the log: the manifest whose SHA-256 is `digest`."""

    class Sealed(Aggregate.Created):
        digest: str
        position: int
        events: int
        manifest: str

        def apply(self, aggregate: Any) -> None:
            aggregate.digest = self.digest
            aggregate.position = self.position
            aggregate.events = self.events
            aggregate.manifest = self.manifest

    digest: str
    position: int
    events: int
    manifest: str

    def __init__(self) -> None:
        """State is set by `Sealed.apply`."""

    @classmethod
    def record(cls, *, manifest: str, position: int, events: int, at: Any) -> SealRecord:
        digest = digest_of(manifest)
        return cls._create(
            cls.Sealed,
            id=seal_id(digest),
            timestamp=at,
            digest=digest,
            position=position,
            events=events,
            manifest=manifest,
        )


def heads_differences(
    sealed: Mapping[UUID, Head],
    current: Mapping[UUID, Head],
    moved: Mapping[tuple[UUID, int], int],
    position: int,
) -> Iterable[tuple[UUID, str, int | None, int | None, str]]:
    """`(id, kind, position in aggregate, log position, sentence)` for every head that differs.

    `moved` maps (id, version) to the log position of events found after the sealed position
    although the seal had them at or before it.
    """
    for oid, head in sealed.items():
        now = current.get(oid)
        label = f"{head.kind} {oid}"
        if now is None or now.version < head.version:
            first = 1 if now is None else now.version + 1
            where = [moved.get((oid, v)) for v in range(first, head.version + 1)]
            span = f"event {first}" if first == head.version else f"events {first}-{head.version}"
            text = f"{label} {span}: sealed at or before log position {position}, now missing there"
            found = [w for w in where if w is not None]
            if found:
                text += f"; found later at log position {found[0]} (re-inserted with another id)"
            else:
                text += " (deleted)"
            yield oid, head.kind, first, None, text
        elif now.version > head.version:
            yield (
                oid,
                head.kind,
                head.version + 1,
                now.log_position,
                f"{label} event {head.version + 1} onwards: at or before sealed log position "
                f"{position} but not in the seal (inserted afterwards)",
            )
        elif now.log_position != head.log_position:
            yield (
                oid,
                head.kind,
                head.version,
                now.log_position,
                f"{label} event {head.version}: sealed at log position {head.log_position}, now "
                f"at {now.log_position} (re-inserted with another id)",
            )
        elif now.hash != head.hash:
            yield (
                oid,
                head.kind,
                head.version,
                now.log_position,
                f"{label} event {head.version}: its content differs from the sealed event",
            )
    for oid, now in current.items():
        if oid not in sealed:
            yield (
                oid,
                now.kind,
                1,
                now.log_position,
                f"{now.kind} {oid}: in the log at or before sealed position {position} but not "
                "in the seal (inserted afterwards)",
            )
