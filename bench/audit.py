"""Audit throughput (events/s) against reading the same log raw, and the audit's peak memory.

On a SQLite log of 100,000 tickets / about 500,000 events this measures, in one run:

- **raw read**: eventsourcing's notification log read in log order, in batches of 1,000
  (``recorder.select_notifications`` + ``mapper.to_domain_event`` on every notification),
  which is the floor any auditor that decodes every event pays;
- **audit**: ``open_auditor(url).audit()``, the full verification (hash chains, sequence,
  transitions, due instants, follow-up links, message ids, metrics);

and prints audit / raw as a ratio (goal >= 0.5). Peak memory is measured in a fresh
subprocess per log size (50,000 and 500,000 events), after opening the store: on Linux the
kernel's peak-RSS mark is reset, and what the audit added is its peak RSS (``VmHWM``) minus
the RSS when it started (elsewhere, ``ru_maxrss`` after minus before, which an earlier peak
such as the imports' can hide); also the ``tracemalloc`` peak of the Python allocations made
during the audit (goal: flat, under +50 MB).

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
from supportflow.audit import open_auditor
from supportflow.ticket import Ticket

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.timers import memo_policy

__all__ = ["build_log", "main", "peak_memory", "raw_read", "timed_audit"]

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


def timed_audit(url: str) -> tuple[int, float, bool]:
    """(events audited, seconds, clean) of one full audit."""
    with open_auditor(url) as auditor:
        started = time.perf_counter()
        report = auditor.audit()
        elapsed = time.perf_counter() - started
    return report.metrics.events, elapsed, report.clean


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


def _memory_child(url: str) -> None:
    """In a subprocess: one audit; print as JSON the max RSS (KiB) before and after it, the
    RSS when it starts and the peak RSS during it (Linux: the peak mark is reset first, so an
    earlier peak such as the imports' cannot hide what the audit adds), and the peak of the
    Python allocations made during it (tracemalloc)."""
    with open_auditor(url) as auditor:
        auditor.policy_registry()  # warm: imports, connection, policy parsing
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        exact = _reset_peak_rss()
        start = _status_kib("VmRSS") if exact else None
        tracemalloc.start()
        report = auditor.audit()
        _, traced_peak = tracemalloc.get_traced_memory()
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
                "traced_peak_mb": traced_peak / 2**20,
                "events": report.metrics.events,
            }
        )
    )


def peak_memory(url: str) -> dict[str, Any]:
    """Peak memory of one audit in a fresh process: RSS before, after, and what the audit
    added (peak during the audit minus RSS at its start where the kernel tells both, else
    the difference of the max RSS before and after)."""
    result = subprocess.run(
        [sys.executable, __file__, "--memory-child", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    if data["rss_start_kib"] is not None and data["rss_peak_kib"] is not None:
        data["added_mb"] = (data["rss_peak_kib"] - data["rss_start_kib"]) / 1024
    else:
        data["added_mb"] = (data["after_kib"] - data["before_kib"]) / 1024
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
    args = parser.parse_args(argv)
    if args.memory_child:
        _memory_child(args.memory_child)
        return 0
    big = args.tickets or (200 if args.quick else 100_000)
    small = max(1, big // 10)
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
        audited, audit_seconds, clean = timed_audit(url)
        memory = [
            {"events": built[size][1], **peak_memory(built[size][0])} for size in (small, big)
        ]
    raw_rate = raw_events / raw_seconds
    audit_rate = audited / audit_seconds
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
        "memory": memory,
    }
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    print(_environment_header())
    print()
    print(
        f"SQLite log: {big:,} tickets, {events:,} events (built in {build_seconds:.0f} s); "
        f"audit clean: {clean}"
    )
    print()
    print("| read | events | seconds | events/s | / raw |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(
        f"| raw notification log + decode | {raw_events:,} | {raw_seconds:.2f} | {raw_rate:,.0f} |"
    )
    print(
        f"| audit | {audited:,} | {audit_seconds:.2f} | {audit_rate:,.0f} "
        f"| {audit_rate / raw_rate:.2f} |"
    )
    print()
    print(
        "| log events | RSS at start MB | peak RSS during MB | RSS added MB "
        "| process max RSS before / after MB | tracemalloc peak MB |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in memory:
        start, peak = row["rss_start_kib"], row["rss_peak_kib"]
        print(
            f"| {row['events']:,} | {'-' if start is None else f'{start / 1024:.1f}'} "
            f"| {'-' if peak is None else f'{peak / 1024:.1f}'} | {row['added_mb']:.1f} "
            f"| {row['before_kib'] / 1024:.1f} / {row['after_kib'] / 1024:.1f} "
            f"| {row['traced_peak_mb']:.1f} |"
        )
    print()
    print(
        "goal: audit / raw >= 0.5; memory flat, under +50 MB; "
        f"{document['seconds']:.0f} s"
        + (" (--quick: figures are not meaningful)" if args.quick else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
