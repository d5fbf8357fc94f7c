"""An audit split over processes, with the report one process gives.

`audit_split` fixes the log's last position now (the audit covers the log up to it), starts
``shares - 1`` processes and verifies the first share itself. A row's share is the last byte
of its originator id modulo the number of shares (`_scan.share_of`; SQLite and PostgreSQL
pick the rows in the query; a row whose id is not a UUID is share 0's), so all the events of
a ticket are in one share. Each share runs the auditor's own checks (`_Check`) over its rows
and writes the follow-up links and message ids it meets to a claims file
(`_cross.ClaimWriter`: a temporary file deleted as soon as it is made, so nothing is left
behind however the audit ends). Then, in two steps:

1. every share reports the latest instant it saw; the audit time is the latest of them (or
   ``as_of``), sent back to every share;
2. every share checks the end of its tickets (timers overdue at the audit time, a Reopened
   waiting for its message) and sends its violations and counts.

The process that split the audit merges: the violations found at each log position (a row's
own first, then what the claims, judged in log order by one `_cross.CrossTicket`, found
there), then each ticket's end in the order the tickets first appeared, then the follow-up
links only one side recorded, keeping the first ``max_violations`` and counting the rest;
the counts are added up (`Tally.merge`). Memory stays bounded in every process. A process
that fails makes the audit fail with its error (`SupportflowError`); none is left behind, and
a share process whose parent is gone stops (its pipe ends).

Share processes are forked where that is safe (POSIX, a single thread: they share the
auditor's memory until they write to it; the auditor's objects are frozen out of the garbage
collector's way while it forks), else started fresh (a new interpreter that loads the
auditor's own `supportflow` package from its folder and imports nothing of the calling
program: `_BOOTSTRAP`). Messages are pickled over pipes; each
process opens the store itself with the auditor's settings (a SQLite file by its absolute
path) and checks that it sees the log up to the audit's last position.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import gc
import hashlib
import heapq
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any
from uuid import UUID

from eventsourcing.application import Application

from ..clock import SystemClock
from ..errors import SupportflowError
from ._auditor import Auditor, Listed, SplitSource, Tally, _Check, make_violation
from ._cross import ClaimWriter, CrossTicket, read_claims, replay
from ._ledger import MessageEffects, Spill
from ._model import Metrics, Violation
from ._registry import PolicyRegistry
from ._scan import read_rows

__all__ = ["SplitResult", "audit_split", "serve"]

_WAIT_SECONDS = 10.0
"""How long a share process that has answered is given to exit before it is stopped."""

_PACKAGE = str(Path(__file__).resolve().parents[1])
"""The folder of the `supportflow` package this auditor runs (a share process started
fresh loads this one, whatever else its ``sys.path`` holds)."""
_BOOTSTRAP = """\
import importlib.util, os, sys
package = sys.argv[1]
spec = importlib.util.spec_from_file_location(
    "supportflow", os.path.join(package, "__init__.py"), submodule_search_locations=[package]
)
module = importlib.util.module_from_spec(spec)
sys.modules["supportflow"] = module
spec.loader.exec_module(module)
from supportflow.audit._parallel import worker_main
sys.exit(worker_main(sys.argv[2:]))
"""
"""What a share process started fresh runs (``python -c``): the auditor's own `supportflow`
package, loaded from its folder, serves one share; nothing of the calling program is
imported and ``sys.path`` is left as it is."""


@dataclasses.dataclass(frozen=True)
class SplitResult:
    """A split audit's findings, merged: what `Auditor.audit` reports."""

    violations: list[Violation]
    """The first ``max_violations``, in the order one process reports them."""
    unlisted: int
    """The violations found beyond ``max_violations`` (counted, not listed)."""
    metrics: Metrics
    """The metrics of every share, added up."""
    position: int
    """The last log position read."""
    audit_time: _dt.datetime
    """``as_of``, else the latest instant the log records (else now)."""
    sample: list[UUID]
    """The first tickets submitted (for timelines), in log order."""


@dataclasses.dataclass(frozen=True)
class _Spec:
    """One share's task (sent to a process started fresh: plain, picklable data)."""

    settings: dict[str, str]
    """The eventsourcing settings the store is opened with."""
    app_name: str
    """The auditor's application name (it prefixes settings and names PostgreSQL tables)."""
    registry: PolicyRegistry
    """The auditor's policies (every share judges by the same ones)."""
    batch: int
    """Rows read per query."""
    index: int
    """Which share (0 to ``shares`` - 1)."""
    shares: int
    """How many shares the log is split into."""
    last: int
    """The last log position audited."""
    fingerprint: tuple[Any, ...] | None
    """The row at `last` as the auditor reads it (`_fingerprint`): every share process
    checks it reads the same store."""
    claims: int
    """The file descriptor of the share's claims file (unlinked, open for writing)."""
    as_of: _dt.datetime | None
    grace: _dt.timedelta
    timelines: int
    max_violations: int


@dataclasses.dataclass
class _Found:
    """What one share found."""

    violations: list[Violation]
    """Found while reading, in log order (at most ``max_violations``)."""
    ends: list[tuple[int, Violation]]
    """Found at the end, each with the log position where its ticket first appeared."""
    unlisted: int
    """Found beyond ``max_violations``: counted, not sent."""
    tally: Tally
    sample: list[tuple[int, UUID]]
    """The first tickets submitted in this share: (log position, ticket id)."""


def _fingerprint(recorder: Any, position: int) -> tuple[Any, ...] | None:
    """The row at log `position` (id, originator, version, topic, SHA-256 of its state);
    None when there is none."""
    if position < 1:
        return None
    rows = read_rows(recorder, position, 1, ())
    if not rows or rows[0][0] != position:
        return None
    rowid, originator, version, topic, state = rows[0]
    data = state if isinstance(state, bytes) else str(state).encode("utf-8", "replace")
    return rowid, str(originator), version, topic, hashlib.sha256(data).hexdigest()


def _application(spec: _Spec) -> Application[UUID]:
    """The store, opened as the auditor opened it (under its application's name)."""
    cls: Any = type("_ShareApplication", (Application,), {"name": spec.app_name})
    app: Application[UUID] = cls(env=spec.settings)
    return app


class _ShareAudit:
    """One share of the audit, in whichever process runs it."""

    def __init__(self, spec: _Spec, auditor: Auditor | None = None) -> None:
        self.spec = spec
        self._owned = auditor is None
        if auditor is None:
            path = spec.settings.get("SQLITE_DBNAME", "")
            if "sqlite" in spec.settings.get("PERSISTENCE_MODULE", "") and not os.path.isfile(
                path
            ):  # (opening it would make a new, empty store)
                raise SupportflowError(f"the store's SQLite file {path} is gone")
            auditor = Auditor(_application(spec), batch_size=spec.batch)
            found = _fingerprint(auditor.application.recorder, spec.last)
            if found != spec.fingerprint:
                auditor.application.close()
                raise SupportflowError(
                    f"the store this process opened does not hold the auditor's row at log "
                    f"position {spec.last}: the store was replaced or changed during the audit"
                )
        self.auditor = auditor
        self.violations: list[Violation] = []
        self.ends: list[tuple[int, Violation]] = []
        self.unlisted = 0
        self._ending = False
        self.claims = ClaimWriter(os.fdopen(os.dup(spec.claims), "wb"))
        self.check = _Check(spec.registry, spec.as_of, self._report, None, claims=self.claims)
        self.sample: list[tuple[int, UUID]] = []

    def _report(self, violation: Violation) -> None:
        if len(self.violations) + len(self.ends) >= self.spec.max_violations:
            self.unlisted += 1  # beyond the audit's limit: counted, not sent
        elif self._ending:
            self.ends.append((self.check.order, violation))
        else:
            self.violations.append(violation)

    def scan(self) -> tuple[_dt.datetime | None, int]:
        """Verify the share's rows; (the latest instant seen, the last log position read)."""
        spec = self.spec
        position, self.sample = self.auditor._verify(
            self.check,
            self.auditor._row_batches((spec.index, spec.shares, spec.last)),
            simulator=None,
            sealed=None,
            heads={},
            moved={},
            timelines=spec.timelines,
        )
        self.claims.close()
        return self.check.latest, position

    def finish(self, audit_time: _dt.datetime) -> _Found:
        """The end of the share's tickets at `audit_time`; everything found."""
        self._ending = True
        self.check.finish_tickets(audit_time, self.spec.grace)
        return _Found(self.violations, self.ends, self.unlisted, self.check.tally(), self.sample)

    def close(self) -> None:
        self.claims.close()
        self.check.close()
        if self._owned:
            self.auditor.close()
            self.auditor.application.close()


class _Channel:
    """Pickled messages over a pair of pipe ends."""

    def __init__(self, incoming: int, outgoing: int) -> None:
        self._in: IO[bytes] = os.fdopen(incoming, "rb")
        self._out: IO[bytes] = os.fdopen(outgoing, "wb")

    def send(self, message: Any) -> None:
        """Write one message (`OSError` when the other side is gone, even where SIGPIPE
        would kill the process: it is held back while writing)."""
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        with _no_sigpipe():
            self._out.write(data)
            self._out.flush()

    def recv(self) -> Any:
        """The next message (`EOFError` when the other side is gone)."""
        return pickle.load(self._in)

    def close(self) -> None:
        for end in (self._in, self._out):
            with contextlib.suppress(OSError):
                end.close()


@contextlib.contextmanager
def _no_sigpipe() -> Iterator[None]:
    """Hold SIGPIPE back in this thread (a write to a closed pipe then fails with `EPIPE`)
    and drop one that came meanwhile; nothing to do where signals cannot be masked."""
    mask = getattr(signal, "pthread_sigmask", None)
    if mask is None or not hasattr(signal, "SIGPIPE"):
        yield
        return
    before = mask(signal.SIG_BLOCK, {signal.SIGPIPE})
    try:
        yield
    finally:
        if signal.SIGPIPE not in before:
            pending = getattr(signal, "sigtimedwait", None)
            if pending is not None and signal.SIGPIPE in signal.sigpending():
                pending({signal.SIGPIPE}, 0)
            mask(signal.SIG_SETMASK, before)


def serve(channel: _Channel, spec: _Spec | None = None) -> None:
    """A share process's work, in the two steps `audit_split` drives; `spec` is the first
    message when not given. Stops when told to, or when the auditor is gone (end of pipe)."""
    share: _ShareAudit | None = None
    try:
        if spec is None:
            spec = channel.recv()
        assert spec is not None
        share = _ShareAudit(spec)
        channel.send(("scanned", share.scan()))
        kind, audit_time = channel.recv()
        if kind == "finish":
            channel.send(("found", share.finish(audit_time)))
    except EOFError:
        pass  # the auditor is gone: nobody waits for an answer
    except BaseException as error:  # the auditor raises it
        with contextlib.suppress(Exception):
            channel.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        if share is not None:
            share.close()
        channel.close()


def _can_fork() -> bool:
    """Whether forking is safe here: POSIX, and no other thread that could hold a lock."""
    return hasattr(os, "fork") and threading.active_count() == 1


@dataclasses.dataclass
class _Process:
    """A share process as the auditor sees it."""

    index: int
    channel: _Channel
    pid: int | None = None
    popen: subprocess.Popen[bytes] | None = None

    def receive(self, expected: str) -> Any:
        try:
            kind, payload = self.channel.recv()
        except (EOFError, OSError, pickle.UnpicklingError) as error:
            raise SupportflowError(
                f"the audit's process for share {self.index} stopped without an answer "
                f"({type(error).__name__})"
            ) from None
        if kind == "error":
            raise SupportflowError(f"the audit's process for share {self.index} failed: {payload}")
        if kind != expected:  # pragma: no cover  (the protocol above)
            raise SupportflowError(f"the audit's process for share {self.index} said {kind!r}")
        return payload

    def send(self, message: Any) -> None:
        try:
            self.channel.send(message)
        except OSError:  # it is gone: what it said, if anything, explains why
            self.receive("an answer")
            raise SupportflowError(f"the audit's process for share {self.index} stopped") from None

    def stop(self, *, wait: bool) -> None:
        """Close its pipes; kill it unless `wait` (then it is given `_WAIT_SECONDS` to
        exit); reap it (unless the caller reaps its children itself)."""
        self.channel.close()
        if self.popen is not None:
            if wait:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.popen.wait(_WAIT_SECONDS)
            if self.popen.poll() is None:
                self.popen.kill()
            self.popen.wait()
        elif self.pid is not None:
            deadline = time.monotonic() + (_WAIT_SECONDS if wait else 0.0)
            with contextlib.suppress(ChildProcessError):  # (the caller reaps its children)
                while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
                    if time.monotonic() >= deadline:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(self.pid, signal.SIGKILL)
                        os.waitpid(self.pid, 0)
                        break
                    time.sleep(0.01)


def _start(spec: _Spec, index: int, fork: bool, held: list[int]) -> _Process:
    """Start the process of share `index`; `held` lists the auditor's ends of the pipes of
    the shares started before (a forked process closes its copies: they would keep those
    pipes open)."""
    down_read, down_write = os.pipe()
    up_read, up_write = os.pipe()
    try:
        if fork:
            pid = os.fork()
            if pid == 0:  # the share process: it never returns into the caller's code
                code = 1
                try:
                    _leave_the_callers_signals()
                    for fd in (*held, down_write, up_read):
                        os.close(fd)
                    serve(_Channel(down_read, up_write), spec)
                    code = 0
                finally:
                    os._exit(code)
            process = _Process(index, _Channel(up_read, down_write), pid=pid)
        else:
            popen = subprocess.Popen(
                [sys.executable, "-c", _BOOTSTRAP, _PACKAGE, str(down_read), str(up_write)],
                pass_fds=(down_read, up_write, spec.claims),
                stdin=subprocess.DEVNULL,
            )
            process = _Process(index, _Channel(up_read, down_write), popen=popen)
    except BaseException:
        os.close(up_read)
        os.close(down_write)
        raise
    finally:
        os.close(down_read)  # (only the share process holds them now: if it dies, a write
        os.close(up_write)  # to it fails and a read from it ends, instead of waiting)
    held += [up_read, down_write]
    return process


def _leave_the_callers_signals() -> None:
    """In a forked share process: the caller's signal handlers (and an event loop's wakeup
    descriptor) are the caller's, not this process's: back to the defaults."""
    with contextlib.suppress(ValueError, OSError):
        signal.set_wakeup_fd(-1)
    for number in signal.valid_signals():
        with contextlib.suppress(ValueError, OSError, TypeError):
            if callable(signal.getsignal(number)):
                default = signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL
                signal.signal(number, default)


def audit_split(
    source: SplitSource,
    registry: PolicyRegistry,
    *,
    shares: int,
    as_of: _dt.datetime | None,
    grace: _dt.timedelta,
    timelines: int,
    max_violations: int,
    batch: int,
) -> SplitResult:
    """Audit `source`'s store in `shares` shares (this process verifies the first)."""
    auditor = source.auditor
    recorder = auditor.application.recorder
    last = recorder.max_notification_id() or 0
    fingerprint = _fingerprint(recorder, last)
    with contextlib.ExitStack() as stack:
        claims = [  # unlinked files: never left behind, however the audit ends
            stack.enter_context(tempfile.TemporaryFile()) for _ in range(shares)
        ]
        specs = [
            _Spec(
                settings=source.settings,
                app_name=source.app_name,
                registry=registry,
                batch=batch,
                index=index,
                shares=shares,
                last=last,
                fingerprint=fingerprint,
                claims=claims[index].fileno(),
                as_of=as_of,
                grace=grace,
                timelines=timelines,
                max_violations=max_violations,
            )
            for index in range(shares)
        ]
        scanned, found, audit_time = _run(auditor, specs)
        violations, unlisted = _merged(found, claims, max_violations)
    tally = found[0].tally
    for more in found[1:]:
        tally.merge(more.tally)
    sample = heapq.merge(*(f.sample for f in found), key=lambda item: item[0])
    return SplitResult(
        violations=violations,
        unlisted=unlisted,
        metrics=tally.metrics(),
        position=max(position for _, position in scanned),
        audit_time=audit_time,
        sample=[tid for _, tid in sample][:timelines],
    )


def _run(
    auditor: Auditor, specs: list[_Spec]
) -> tuple[list[tuple[_dt.datetime | None, int]], list[_Found], _dt.datetime]:
    """Run every share (the first in this process) through both steps."""
    fork = _can_fork()
    processes: list[_Process] = []
    own: _ShareAudit | None = None
    completed = False
    frozen = fork and gc.get_freeze_count() == 0  # (a caller's own freeze is left alone)
    try:
        if frozen:
            gc.freeze()  # this process's objects: not copied by the share processes' collections
        try:
            held: list[int] = []
            for spec in specs[1:]:
                processes.append(_start(spec, spec.index, fork, held))
                if not fork:
                    processes[-1].send(spec)  # (a fresh process gets its task by pipe)
        finally:
            if frozen:
                gc.unfreeze()
        own = _ShareAudit(specs[0], auditor)
        scanned = [own.scan()]
        scanned += [process.receive("scanned") for process in processes]
        seen = [latest for latest, _ in scanned if latest is not None]
        as_of = specs[0].as_of
        audit_time = as_of if as_of is not None else (max(seen) if seen else None)
        if audit_time is None:
            audit_time = SystemClock().now()
        for process in processes:
            process.send(("finish", audit_time))
        found = [own.finish(audit_time)]
        found += [process.receive("found") for process in processes]
        completed = True
    finally:
        _stop_all(processes, own, wait=completed)
    return scanned, found, audit_time


def _stop_all(processes: list[_Process], own: _ShareAudit | None, *, wait: bool) -> None:
    """Stop every share process and close this process's share, each whatever happens to
    the others (an error here never hides the audit's own)."""
    if not processes:
        if own is not None:
            own.close()
        return
    try:
        processes[0].stop(wait=wait)
    finally:
        _stop_all(processes[1:], own, wait=wait)


def _merged(
    found: list[_Found], claims: Iterable[IO[bytes]], limit: int
) -> tuple[list[Violation], int]:
    """Every share's violations and the claims' in the order one process reports them: the
    first `limit`, and how many more there are."""
    keep = Listed(limit)
    readers = []
    for file in claims:
        file.seek(0)
        readers.append(read_claims(file))
    spill = Spill()
    try:
        cross = CrossTicket(
            MessageEffects(spill),
            lambda rule, tid, position, log_position, text: keep(
                make_violation(rule, tid, position, log_position, text)
            ),
        )
        rows = _by_position(*(f.violations for f in found))
        pending = next(rows, None)
        for claim in heapq.merge(*readers, key=_position):
            while pending is not None and (pending.log_position or 0) <= claim[0]:
                keep(pending)  # a row's own violations come before what its claims find
                pending = next(rows, None)
            replay(cross, (claim,))
        while pending is not None:
            keep(pending)
            pending = next(rows, None)
        for _, violation in heapq.merge(*(f.ends for f in found), key=_position):
            keep(violation)
        cross.finish()
    finally:
        spill.close()
    return keep.kept, keep.unlisted + sum(f.unlisted for f in found)


def _by_position(*streams: list[Violation]) -> Iterator[Violation]:
    """The shares' violations found while reading, merged by log position."""
    return heapq.merge(*streams, key=lambda violation: violation.log_position or 0)


def _position(item: tuple[Any, ...]) -> int:
    """A claim's log position, or the first-appearance position of a ticket's end."""
    position: int = item[0]
    return position


def worker_main(argv: list[str]) -> int:
    """A share process started fresh (`_BOOTSTRAP`): serve one share over the pipe ends
    ``IN OUT`` (file descriptors) given in `argv`."""
    serve(_Channel(int(argv[0]), int(argv[1])))
    return 0
