"""The checks that span two tickets: follow-up links and inbound message ids.

A follow-up link is recorded on both tickets (the closed ticket's `FollowUpCreated`, the
follow-up's `Submitted.follow_up_of`), and an inbound message id takes effect once in the
whole log. `CrossTicket` judges these claims as the audit meets them, in log order. When the
audit is split over processes (each verifies its share of the tickets), each share writes its
claims to a file instead (`ClaimWriter`); the claims of all the shares, merged in log order
(`read_claims`, `replay`), are then judged by one `CrossTicket`: the same violations, in the
same order, as one process meeting them.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any
from uuid import UUID

from ._ledger import MessageEffects

__all__ = ["ClaimWriter", "CrossTicket", "read_claims", "replay"]

Violate = Callable[[str, UUID, "int | None", "int | None", str], None]
"""``violation(rule, ticket id, position in the ticket, log position, text)``."""

_CHILD, _PARENT, _EFFECT = 0, 1, 2
_CHUNK = 4096
"""Claims pickled together (a file is read back one chunk at a time)."""


class CrossTicket:
    """Judges follow-up links and message ids in log order; `finish()` reports the links
    that only one side recorded."""

    def __init__(self, effects: MessageEffects, violation: Violate) -> None:
        self.effects = effects
        self.violation = violation
        self.from_parent: dict[UUID, tuple[UUID, int, int]] = {}
        """Follow-ups recorded by their closed ticket, waiting for their own `Submitted`."""
        self.from_child: dict[UUID, tuple[UUID, int]] = {}
        """Follow-ups whose `Submitted` came first, waiting for their parent's record."""

    def child_link(self, tid: UUID, parent: Any, log_position: int) -> None:
        """Ticket `tid`'s `Submitted` says it follows up `parent`."""
        claim = self.from_parent.pop(tid, None)
        if claim is None:
            self.from_child[tid] = (parent, log_position)
        elif claim[0] != parent:
            self.violation(
                "follow-up-link",
                tid,
                1,
                log_position,
                f"says it follows up ticket {parent}, but ticket {claim[0]} recorded it as its "
                "follow-up",
            )

    def parent_link(self, child: Any, tid: UUID, position: int, log_position: int) -> None:
        """Ticket `tid` recorded follow-up `child` (its event `position`)."""
        claim = self.from_child.pop(child, None)
        if claim is None:
            self.from_parent[child] = (tid, position, log_position)
        elif claim[0] != tid:
            self.violation(
                "follow-up-link",
                tid,
                position,
                log_position,
                f"records follow-up {child}, which says it follows up ticket {claim[0]}",
            )

    def effect(
        self, mid: str, landed: UUID, kind: str, tid: UUID, position: int, log_position: int
    ) -> None:
        """Inbound message `mid` took effect on ticket `landed` (recorded by ticket `tid`'s
        event `position`)."""
        seen = self.effects.get(mid)
        if seen is None:
            self.effects[mid] = (landed, kind)
            return
        if seen == (landed, "follow-up") and kind == "submitted":
            self.effects[mid] = (landed, "done")  # the follow-up's own Submitted: same effect
            return
        self.violation(
            "duplicate-message",
            tid,
            position,
            log_position,
            f"message id {mid!r} takes effect again; it already took effect on ticket {seen[0]}",
        )

    def finish(self) -> None:
        """Report the links only one side recorded."""
        for child, (parent, position, log_position) in self.from_parent.items():
            self.violation(
                "follow-up-link",
                parent,
                position,
                log_position,
                f"records follow-up ticket {child}, which is not in the log (or does not say "
                "it follows up this ticket)",
            )
        for child, (parent, log_position) in self.from_child.items():
            self.violation(
                "follow-up-link",
                child,
                1,
                log_position,
                f"says it follows up ticket {parent}, which has no FollowUpCreated for it",
            )


class ClaimWriter:
    """The same calls as `CrossTicket` (without `finish`), written to `file` in log order
    (`close` closes it)."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self._chunk: list[tuple[Any, ...]] = []

    def _add(self, claim: tuple[Any, ...]) -> None:
        self._chunk.append(claim)
        if len(self._chunk) >= _CHUNK:
            self._write()

    def _write(self) -> None:
        if self._chunk:
            pickle.dump(self._chunk, self._file, protocol=pickle.HIGHEST_PROTOCOL)
            self._chunk = []

    def child_link(self, tid: UUID, parent: Any, log_position: int) -> None:
        self._add((log_position, _CHILD, tid, parent))

    def parent_link(self, child: Any, tid: UUID, position: int, log_position: int) -> None:
        self._add((log_position, _PARENT, child, tid, position))

    def effect(
        self, mid: str, landed: UUID, kind: str, tid: UUID, position: int, log_position: int
    ) -> None:
        self._add((log_position, _EFFECT, mid, landed, kind, tid, position))

    def close(self) -> None:
        """Write what is buffered and close the file (idempotent)."""
        if not self._file.closed:
            self._write()
            self._file.close()


def read_claims(file: IO[bytes]) -> Iterator[tuple[Any, ...]]:
    """The claims a `ClaimWriter` wrote to `file` (read from where it stands), in order (the
    file is this audit's own)."""
    while True:
        try:
            chunk: list[tuple[Any, ...]] = pickle.load(file)
        except EOFError:
            return
        yield from chunk


def replay(cross: CrossTicket, claims: Iterable[tuple[Any, ...]]) -> None:
    """Judge `claims` (in log order) with `cross`, as if its calls had been made directly."""
    for claim in claims:
        log_position, kind = claim[0], claim[1]
        if kind == _CHILD:
            cross.child_link(claim[2], claim[3], log_position)
        elif kind == _PARENT:
            cross.parent_link(claim[2], claim[3], claim[4], log_position)
        else:
            cross.effect(claim[2], claim[3], claim[4], claim[5], claim[6], log_position)
