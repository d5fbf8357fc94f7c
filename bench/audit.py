"""Audit throughput (events/s) against reading the same log raw, and the audit's peak memory.

On a SQLite log of 100,000 tickets / about 500,000 events this measures, in one run:

- **raw read**: eventsourcing's notification log read in log order, in batches of 1,000
  (``recorder.select_notifications`` + ``mapper.to_domain_event`` on every notification),
  which is the floor any auditor that decodes every event pays;
- **audit, one process**: ``open_auditor(url).audit()``, the full verification (hash chains,
  sequence, transitions, due instants, follow-up links, message ids, metrics);
- **audit, split**: ``audit(workers="auto")``, what ``supportflow audit`` does by default on
  a log this size: the same verification (the same report, checked here) split over one
  process per CPU;

and prints each audit / raw as a ratio (goal >= 0.5). Peak memory is measured in a fresh
subprocess per log size (50,000 and 500,000 events) and per way of auditing, after opening
the store: on Linux the kernel's peak-RSS mark is reset, and what the audit added is its peak
RSS (``VmHWM``) minus the RSS when it started (elsewhere, ``ru_maxrss`` after minus before,
which an earlier peak such as the imports' can hide), plus, for a split audit, the peak of
each share process's own memory (its private pages, ``Private_*`` of ``smaps_rollup``,
sampled every 20 ms: pages it still shares with its parent are not added twice); also the
``tracemalloc`` peak of the Python allocations made during a one-process audit (goal: flat,
under +50 MB).

The log is built fast: tickets are made with the aggregate's own command methods under the
desk's policy, with a manual clock, and saved 500 at a time through the desk's application
(events, hash chains and due-timer index exactly as the desk writes them); before each
command the ticket catches up with its due timers, as the desk does. A ticket has about 5
events: submit, assign and reply (or request_info and a customer reply), solve, then the
automatic close at its due instant. The built database is cached in a temp dir for the run.

Run it from the repository root: ``python bench/audit.py`` (``make bench``). ``--quick`` uses
tiny logs (a smoke run, figures meaningless); ``--json`` prints machine-readable output.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from supportflow import ManualClock, Severity, SupportDesk
from supportflow.audit import MAX_WORKERS, open_auditor, report_json
from supportflow.audit._auditor import _cpus
from supportflow.ticket import Ticket

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.timers import memo_policy

__all__ = [
    "build_log",
    "main",
    "peak_memory",
    "raw_read",
    "render",
    "split_workers",
    "timed_audit",
]

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
BATCH = 500
SAME_INSTANT = 20
"""Tickets submitted at the same instant: the build computes each due instant once per group
(`bench.timers.memo_policy`), the audit still verifies every ticket's."""


def build_log(path: Path, tickets: int) -> int:
    """A SQLite log of `tickets` tickets of about 5 events each; returns the events written.

    Before each command the ticket catches up with its due timers, as the desk does, so any
    timer the policy arms (e.g. an update-overdue clock) fires at its due instant."""
    url = f"sqlite:///{path}"
    events = 0
    with SupportDesk(url, clock=ManualClock(START)) as desk:
        policy = memo_policy(desk.policy)
        app = desk.application
        batch: list[Ticket] = []
        for i in range(tickets):
            at = START + timedelta(seconds=30 * (i // SAME_INSTANT))
            requester = f"c{i % 997}@example.com"
            ticket = Ticket.submit(
                ticket_id=uuid.uuid4(),
                policy=policy,
                at=at,
                requester=requester,
                subject="Cannot restore the backup",
                description="It fails at 80%",
                severity=Severity(1 + i % 4),
                channel="web",
                product={"name": "backup", "version": "4.2"},
                tags=["restore"],
            )

            def step(minutes: int, ticket: Ticket = ticket, at: datetime = at) -> datetime:
                when = at + timedelta(minutes=minutes)
                ticket.catch_up(policy, until=when, written_at=when)
                return when

            if i % 4 == 3:  # no assign: request_info, then the customer's answer
                ticket.respond(
                    policy, agent="bob", body="Which version?", asks_for_input=True, at=step(20)
                )
                ticket.customer_reply(
                    policy,
                    by=requester,  # the requester answers (the audit checks who acts)
                    body="4.2",
                    message_id=None,
                    auto_submitted=False,
                    at=step(120),
                )
                ticket.solve(policy, agent="bob", solution="Fixed", at=step(130))
            else:
                ticket.assign(policy, agent=f"agent{i % 13}", at=step(5))
                ticket.respond(
                    policy, agent="bob", body="Looking into it", asks_for_input=False, at=step(20)
                )
                ticket.solve(policy, agent="bob", solution="Fixed", at=step(60))
            step(60 * 24 * 60)  # 60 days later: the automatic close (and anything else due)
            if ticket.status.name != "CLOSED":
                raise RuntimeError(f"built a ticket that ends {ticket.status.name}")
            events += ticket.version
            batch.append(ticket)
            if len(batch) == BATCH:
                app.save(*batch)
                batch = []
        if batch:
            app.save(*batch)
    return events


def raw_read(url: str) -> tuple[int, float]:
    """(events, seconds) to read the whole log with the notification log and decode it."""
    with open_auditor(url) as auditor:
        app = auditor.application
        recorder: Any = app.recorder
        mapper = app.mapper
        started = time.perf_counter()
        position, count = 1, 0
        while True:
            batch = recorder.select_notifications(start=position, limit=1000)
            if not batch:
                break
            for n in batch:
                mapper.to_domain_event(n)
            count += len(batch)
            position = batch[-1].id + 1
        return count, time.perf_counter() - started


def timed_audit(url: str, workers: int | str = 1) -> tuple[int, float, bool, str]:
    """(events audited, seconds, clean, the JSON report) of one full audit."""
    with open_auditor(url) as auditor:
        auditor.policy_registry()  # warm: imports, connection, policy parsing
        started = time.perf_counter()
        report = auditor.audit(workers=workers)
        elapsed = time.perf_counter() - started
    return report.metrics.events, elapsed, report.clean, report_json(report)


def split_workers() -> int:
    """How many processes ``workers="auto"`` uses on this machine for a large log."""
    return max(1, min(_cpus(), MAX_WORKERS))


def _status_kib(field: str) -> int | None:
    """A ``VmRSS``/``VmHWM`` line of ``/proc/self/status`` in KiB (None where there is none)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux: ``clear_refs`` 5)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


def _memory_child(url: str, workers: int) -> None:
    """In a subprocess: one audit; print as JSON the max RSS (KiB) before and after it, the
    RSS when it starts and the peak RSS during it (Linux: the peak mark is reset first, so an
    earlier peak such as the imports' cannot hide what the audit adds), and the peak of the
    Python allocations made during a one-process audit (tracemalloc: a split audit's
    processes would inherit the tracing, and its cost)."""
    with open_auditor(url) as auditor:
        auditor.policy_registry()  # warm: imports, connection, policy parsing
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        exact = _reset_peak_rss()
        start = _status_kib("VmRSS") if exact else None
        traced = workers == 1
        if traced:
            tracemalloc.start()
        report = auditor.audit(workers=workers)
        traced_peak = tracemalloc.get_traced_memory()[1] if traced else None
        tracemalloc.stop()
        peak = _status_kib("VmHWM") if exact else None
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "before_kib": before,
                "after_kib": after,
                "rss_start_kib": start,
                "rss_peak_kib": peak,
                "traced_peak_mb": None if traced_peak is None else traced_peak / 2**20,
                "events": report.metrics.events,
            }
        )
    )


def _children(pid: int) -> list[int]:
    """The processes `pid` started (Linux ``/proc``; empty elsewhere)."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text(encoding="ascii")
            found += [int(child) for child in text.split()]
    except OSError:
        return found
    return found


def _private_kib(pid: int) -> int | None:
    """A process's own memory: its private pages (``Private_*`` of ``smaps_rollup``)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="ascii")
    except OSError:
        return None
    return sum(int(line.split()[1]) for line in text.splitlines() if line.startswith("Private_"))


def peak_memory(url: str, workers: int = 1) -> dict[str, Any]:
    """Peak memory of one audit in a fresh process: RSS before, after, and what the audit
    added (peak during the audit minus RSS at its start where the kernel tells both, else
    the difference of the max RSS before and after; plus the peak private memory of each
    process a split audit starts, sampled every 20 ms)."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--memory-child", url, "--workers", str(workers)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    shares: dict[int, int] = {}
    while process.poll() is None:
        for child in _children(process.pid):
            private = _private_kib(child)
            if private is not None:
                shares[child] = max(shares.get(child, 0), private)
        time.sleep(0.02)
    out, err = process.communicate()
    if process.returncode:
        raise RuntimeError(f"the memory run failed: {err.strip()[-2000:]}")
    data: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    if data["rss_start_kib"] is not None and data["rss_peak_kib"] is not None:
        data["added_mb"] = (data["rss_peak_kib"] - data["rss_start_kib"]) / 1024
    else:
        data["added_mb"] = (data["after_kib"] - data["before_kib"]) / 1024
    data["workers"] = workers
    data["share_processes"] = len(shares)
    data["shares_mb"] = sum(shares.values()) / 1024
    data["added_mb"] += data["shares_mb"]
    return data


def _environment_header() -> str:
    from bench.rebuild import environment, header  # the same machine line as bench/rebuild.py

    line: str = header(environment())
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="tiny logs (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--tickets", type=int, default=None, help="tickets in the big log")
    parser.add_argument("--memory-child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        _memory_child(args.memory_child, args.workers)
        return 0
    big = args.tickets or (200 if args.quick else 100_000)
    small = max(1, big // 10)
    workers = split_workers()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="supportflow-bench-audit-") as tmp:
        built = {}
        for tickets in (small, big):
            path = Path(tmp) / f"log-{tickets}.db"
            t0 = time.perf_counter()
            events = build_log(path, tickets)
            built[tickets] = (f"sqlite:///{path}", events, time.perf_counter() - t0)
        url, events, build_seconds = built[big]
        raw_events, raw_seconds = raw_read(url)
        audited, audit_seconds, clean, one_report = timed_audit(url)
        split_events, split_seconds, split_clean, split_report = timed_audit(url, workers)
        memory = [
            {"events": built[size][1], **peak_memory(built[size][0])} for size in (small, big)
        ]
        split_memory = [
            {"events": built[size][1], **peak_memory(built[size][0], workers)}
            for size in (small, big)
        ]
    raw_rate = raw_events / raw_seconds
    audit_rate = audited / audit_seconds
    split_rate = split_events / split_seconds
    document: dict[str, Any] = {
        "quick": args.quick,
        "seconds": time.perf_counter() - started,
        "tickets": big,
        "events": events,
        "build_seconds": build_seconds,
        "raw": {"events": raw_events, "seconds": raw_seconds, "events_per_s": raw_rate},
        "audit": {
            "events": audited,
            "seconds": audit_seconds,
            "events_per_s": audit_rate,
            "clean": clean,
        },
        "ratio": audit_rate / raw_rate,
        "split": {
            "workers": workers,
            "events": split_events,
            "seconds": split_seconds,
            "events_per_s": split_rate,
            "clean": split_clean,
            "same_report": split_report == one_report,
        },
        "split_ratio": split_rate / raw_rate,
        "memory": memory,
        "split_memory": split_memory,
    }
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    print(_environment_header())
    print()
    print("\n".join(render(document)))
    print()
    print(
        f"{document['seconds']:.0f} s"
        + (" (--quick: figures are not meaningful)" if args.quick else "")
    )
    return 0


def render(doc: dict[str, Any]) -> list[str]:
    """The Markdown tables of a document `main` made (also used by ``bench/all.py``)."""
    raw, audit, split = doc["raw"], doc["audit"], doc["split"]
    lines = [
        f"SQLite log: {doc['tickets']:,} tickets, {doc['events']:,} events (built in "
        f"{doc['build_seconds']:.0f} s); audit clean: {audit['clean']}; the split audit's "
        f"report is the same: {split['same_report']}; goals: audit / raw >= 0.5, memory flat "
        "and under +50 MB",
        "",
        "| read | events | seconds | events/s | / raw |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| raw notification log + decode | {raw['events']:,} | {raw['seconds']:.2f} "
        f"| {raw['events_per_s']:,.0f} | |",
        f"| audit, one process | {audit['events']:,} | {audit['seconds']:.2f} "
        f"| {audit['events_per_s']:,.0f} | {doc['ratio']:.2f} |",
        f'| audit split over {split["workers"]} processes (`workers="auto"`) '
        f"| {split['events']:,} | {split['seconds']:.2f} | {split['events_per_s']:,.0f} "
        f"| {doc['split_ratio']:.2f} |",
        "",
        "| audit | log events | RSS at start MB | peak RSS during MB | share processes' own "
        "MB | RSS added MB | tracemalloc peak MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, rows in (("one process", doc["memory"]), ("split", doc["split_memory"])):
        for row in rows:
            start, peak = row["rss_start_kib"], row["rss_peak_kib"]
            traced = row["traced_peak_mb"]
            lines.append(
                f"| {name} | {row['events']:,} "
                f"| {'-' if start is None else f'{start / 1024:.1f}'} "
                f"| {'-' if peak is None else f'{peak / 1024:.1f}'} "
                f"| {row['shares_mb']:.1f} ({row['share_processes']}) "
                f"| {row['added_mb']:.1f} | {'-' if traced is None else f'{traced:.1f}'} |"
            )
    return lines


if __name__ == "__main__":
    sys.exit(main())
