"""An audit split over processes, with the report one process gives.

`audit_split` fixes the log's last position now (the audit covers the log up to it), starts
``parts - 1`` processes and verifies one share itself. A row's share is the last byte of its
originator id modulo the number of shares (`_scan.share_of`; SQLite and PostgreSQL pick the
rows in the query), so all the events of a ticket are in one share. Each share runs the
auditor's own checks (`_Check`) over its rows, and writes the follow-up links and message ids
it meets to a claims file (`_cross.ClaimWriter`). Then, in two steps:

1. every share reports the latest instant it saw; the audit time is the latest of them (or
   ``as_of``), sent back to every share;
2. every share checks the end of its tickets (timers overdue at the audit time, a Reopened
   waiting for its message) and sends its violations and counts.

The process that split the audit merges: the violations found at each log position (a row's
own first, then what the claims judged in log order by one `_cross.CrossTicket` found
there), then each ticket's end in the order the tickets first appeared, then the follow-up
links only one side recorded; the counts are added up (`Tally.merge`). Memory stays flat in
every process; a process that fails makes the audit fail with its error.

Processes are forked where that is safe (Linux, one thread: they share the parent's memory
until they write to it; the parent's objects are frozen out of the garbage collector's way
while it forks), else started fresh (``forkserver`` or ``spawn``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import gc
import heapq
import multiprocessing
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any
from uuid import UUID

from ..clock import SystemClock
from ..errors import SupportflowError
from ..policy import SupportPolicy
from ._auditor import Auditor, SplitSource, Tally, _AuditApplication, _Check, make_violation
from ._cross import ClaimWriter, CrossTicket, read_claims, replay
from ._ledger import MessageEffects, Spill
from ._model import Metrics, Violation
from ._registry import PolicyRegistry

__all__ = ["SplitResult", "audit_split"]

_JOIN_SECONDS = 10.0
"""How long a finished process is given to exit before it is stopped."""
_POLL_SECONDS = 1.0
"""How often a process waiting for the audit time checks that its parent still runs."""


@dataclasses.dataclass(frozen=True)
class SplitResult:
    """A split audit's findings, merged: what `Auditor.audit` reports."""

    violations: list[Violation]
    """In the order one process reports them (each share sends at most the audit's limit)."""
    unlisted: int
    """Violations the shares found beyond the limit and did not send."""
    metrics: Metrics
    position: int
    audit_time: _dt.datetime
    sample: list[UUID]
    """The first tickets submitted (for timelines), in log order."""


@dataclasses.dataclass(frozen=True)
class _Spec:
    """One share's task (sent to a process started fresh: plain, picklable data)."""

    settings: dict[str, str]
    policies: tuple[SupportPolicy, ...]
    batch: int
    index: int
    shares: int
    last: int
    claims: str
    as_of: _dt.datetime | None
    grace: _dt.timedelta
    timelines: int
    max_violations: int


@dataclasses.dataclass
class _Found:
    """One share's findings."""

    violations: list[Violation]
    """Found while reading, in log order."""
    ends: list[tuple[int, Violation]]
    """Found at the end, with the log position where each ticket first appeared."""
    reported: int
    tally: Tally
    sample: list[tuple[int, UUID]]


class _Share:
    """One share of the audit, in whichever process runs it."""

    def __init__(
        self, spec: _Spec, auditor: Auditor | None = None, registry: PolicyRegistry | None = None
    ) -> None:
        self.spec = spec
        self._owned = auditor is None
        if auditor is None:
            auditor = Auditor(
                _AuditApplication(env=spec.settings),
                policies=spec.policies,
                batch_size=spec.batch,
            )
        self.auditor = auditor
        self.registry = registry if registry is not None else auditor.policy_registry()
        self.violations: list[Violation] = []
        self.ends: list[tuple[int, Violation]] = []
        self.reported = 0
        self._ending = False
        self.claims = ClaimWriter(spec.claims)
        self.check = _Check(self.registry, spec.as_of, self._report, None, claims=self.claims)
        self.sample: list[tuple[int, UUID]] = []
        self.position = 0

    def _report(self, violation: Violation) -> None:
        self.reported += 1
        if len(self.violations) + len(self.ends) >= self.spec.max_violations:
            return  # beyond the audit's limit: counted, not sent
        if self._ending:
            self.ends.append((self.check.order, violation))
        else:
            self.violations.append(violation)

    def scan(self) -> tuple[_dt.datetime | None, int]:
        """Verify the share's rows; (the latest instant seen, the last log position read)."""
        spec = self.spec
        self.position, self.sample = self.auditor._verify(
            self.check,
            self.auditor._row_batches((spec.index, spec.shares, spec.last)),
            simulator=None,
            sealed=None,
            heads={},
            moved={},
            timelines=spec.timelines,
        )
        self.claims.close()
        return self.check.latest, self.position

    def finish(self, audit_time: _dt.datetime) -> _Found:
        """The end of the share's tickets at `audit_time`; everything found."""
        self._ending = True
        self.check.finish_tickets(audit_time, self.spec.grace)
        tally = self.check.tally()
        return _Found(self.violations, self.ends, self.reported, tally, self.sample)

    def close(self) -> None:
        self.claims.close()
        self.check.close()
        if self._owned:
            self.auditor.application.close()


def _run_share(spec: _Spec, conn: Connection, parents_end: Connection, parent: int) -> None:
    """A process's work: one share, in the two steps `audit_split` drives (it stops when
    told to, or when the process that started it is gone)."""
    parents_end.close()  # (a forked process holds a copy: the pipe would never end)
    share: _Share | None = None
    try:
        share = _Share(spec)
        conn.send(("scanned", share.scan()))
        while not conn.poll(_POLL_SECONDS):
            if os.getppid() != parent:
                return  # the parent died: nobody waits for the answer
        message = conn.recv()
        if message[0] == "finish":
            conn.send(("found", share.finish(message[1])))
    except BaseException as error:  # the parent raises it
        with contextlib.suppress(Exception):  # (the parent may be gone: nothing to tell)
            conn.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        if share is not None:
            share.close()
        conn.close()


def _context() -> Any:
    """Fork where that is safe (Linux, a single thread), else start processes fresh."""
    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _receive(conn: Connection, expected: str, index: int) -> Any:
    try:
        kind, payload = conn.recv()
    except (EOFError, OSError) as error:
        raise SupportflowError(
            f"the audit's process for share {index} stopped without an answer ({error!r})"
        ) from None
    if kind == "error":
        raise SupportflowError(f"the audit's process for share {index} failed: {payload}")
    if kind != expected:  # pragma: no cover  (the protocol above)
        raise SupportflowError(f"the audit's process for share {index} answered {kind!r}")
    return payload


def audit_split(
    source: SplitSource,
    registry: PolicyRegistry,
    *,
    parts: int,
    as_of: _dt.datetime | None,
    grace: _dt.timedelta,
    timelines: int,
    max_violations: int,
    batch: int,
) -> SplitResult:
    """Audit `source`'s store in `parts` shares (this process verifies the first)."""
    auditor = source.auditor
    last = auditor.application.recorder.max_notification_id() or 0
    with tempfile.TemporaryDirectory(prefix="supportflow-audit-") as folder:
        specs = [
            _Spec(
                settings=source.settings,
                policies=source.policies,
                batch=batch,
                index=index,
                shares=parts,
                last=last,
                claims=os.path.join(folder, f"claims-{index}"),
                as_of=as_of,
                grace=grace,
                timelines=timelines,
                max_violations=max_violations,
            )
            for index in range(parts)
        ]
        context = _context()
        children: list[tuple[Any, Connection]] = []
        own: _Share | None = None
        completed = False
        try:
            forking = context.get_start_method() == "fork"
            if forking:
                gc.freeze()  # the parent's objects: not copied by the children's collections
            try:
                for spec in specs[1:]:
                    mine, theirs = context.Pipe()
                    process = context.Process(
                        target=_run_share, args=(spec, theirs, mine, os.getpid()), daemon=True
                    )
                    process.start()
                    theirs.close()
                    children.append((process, mine))
            finally:
                if forking:
                    gc.unfreeze()
            own = _Share(specs[0], auditor, registry)
            scanned = [own.scan()]
            scanned += [_receive(conn, "scanned", i + 1) for i, (_, conn) in enumerate(children)]
            seen = [latest for latest, _ in scanned if latest is not None]
            audit_time = as_of if as_of is not None else (max(seen) if seen else None)
            if audit_time is None:
                audit_time = SystemClock().now()
            for _, conn in children:
                conn.send(("finish", audit_time))
            found = [own.finish(audit_time)]
            found += [_receive(conn, "found", i + 1) for i, (_, conn) in enumerate(children)]
            completed = True
        finally:
            for process, conn in children:
                with contextlib.suppress(OSError, ValueError):  # (finished, or gone)
                    conn.send(("stop", None))
                conn.close()
                if completed:  # it has answered: let it exit
                    process.join(_JOIN_SECONDS)
                if process.is_alive():  # (the audit failed: its work is not wanted)
                    process.kill()
                process.join()
            if own is not None:
                own.close()
        violations = _merged(found, [spec.claims for spec in specs])
    tally = found[0].tally
    for more in found[1:]:
        tally.merge(more.tally)
    sample = heapq.merge(*(f.sample for f in found), key=lambda item: item[0])
    return SplitResult(
        violations=violations,
        unlisted=sum(f.reported - len(f.violations) - len(f.ends) for f in found),
        metrics=tally.metrics(),
        position=max(position for _, position in scanned),
        audit_time=audit_time,
        sample=[tid for _, tid in sample][:timelines],
    )


def _merged(found: list[_Found], claims: list[str]) -> list[Violation]:
    """Every share's violations and the claims' in the order one process reports them."""
    judged: list[Violation] = []
    spill = Spill()
    try:

        def violation(
            rule: str, tid: UUID, position: int | None, log_position: int | None, text: str
        ) -> None:
            judged.append(make_violation(rule, tid, position, log_position, text))

        cross = CrossTicket(MessageEffects(spill), violation)
        replay(cross, heapq.merge(*(read_claims(path) for path in claims), key=_claim_order))
        while_reading = len(judged)
        cross.finish()
    finally:
        spill.close()
    rows: Iterator[tuple[int, int, Violation]] = heapq.merge(
        *(((v.log_position or 0, 0, v) for v in f.violations) for f in found),
        ((v.log_position or 0, 1, v) for v in judged[:while_reading]),
        key=lambda item: (item[0], item[1]),
    )
    ordered = [v for _, _, v in rows]
    ordered += [v for _, v in heapq.merge(*(f.ends for f in found), key=lambda item: item[0])]
    ordered += judged[while_reading:]
    return ordered


def _claim_order(claim: tuple[Any, ...]) -> int:
    position: int = claim[0]
    return position
