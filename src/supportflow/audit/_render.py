"""Reports for people and programs: text, JSON and one self-contained HTML file.

Pure: builds strings. In the HTML every value that comes from the store (subjects, names,
bodies, ids) is escaped, in text and in attributes.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
from collections.abc import Sequence

from ._history import iso
from ._model import RULES, AuditReport, Summary, TicketHistory

__all__ = ["history_json", "history_text", "report_html", "report_json", "report_text"]


def duration(seconds: float | None) -> str:
    """``2d 03h``, ``3h 05m``, ``4m 10s``; ``-`` for None."""
    if seconds is None:
        return "-"
    sign = "-" if seconds < 0 else ""
    total = round(abs(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours:02d}h"
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    return f"{sign}{minutes}m {secs:02d}s"


def _summary(summary: Summary) -> str:
    if not summary.count:
        return "none yet"
    return (
        f"n={summary.count}  median {duration(summary.median)}  mean {duration(summary.mean)}"
        f"  p90 {duration(summary.p90)}"
    )


def _audit_time_note(report: AuditReport) -> str:
    return "as of (--as-of)" if report.as_of is not None else "the latest instant in the log"


def report_text(report: AuditReport) -> str:
    """The report as plain text: result, metrics, violations, what-if."""
    m = report.metrics
    statuses = ", ".join(f"{name} {count}" for name, count in m.by_status)
    result = (
        "CLEAN: no violation"
        if report.clean
        else f"VIOLATIONS: {report.violation_count} rule(s) broken"
    )
    lines = [
        f"supportflow audit of {report.store or 'a desk'}",
        f"audit time {iso(report.audit_time)} ({_audit_time_note(report)}); "
        f"log read up to position {report.log_position}",
        f"policies known: {', '.join(report.policies) or 'none'}",
    ]
    if report.seal:
        lines.append(f"seal checked: {report.seal}")
    lines += [
        f"result: {result}",
        "",
        "metrics",
        f"  tickets          {m.tickets}  ({statuses})",
        f"  events checked   {m.events}",
        f"  first response   {_summary(m.first_response)}",
        f"  time to solve    {_summary(m.time_to_solve)}",
        f"  solves           {m.agent_solves} by agents, {m.automatic_solves} automatic",
        f"  automatic closes {m.automatic_closes}",
        f"  reopens          {m.reopens}",
        f"  follow-ups       {m.follow_ups}",
        f"  longest timer lag {duration(m.max_timer_lag_seconds)} (due instant -> written)",
    ]
    if report.violations:
        lines += ["", "violations"]
        lines += [f"  [{v.rule}] {v.message}" for v in report.violations]
        if report.violations_truncated:
            lines.append(f"  ... and {report.violations_truncated} more")
    if report.what_if is not None:
        lines += ["", f"what if policy {report.what_if.policy_version!r} had been in force"]
        lines += [f"  - {sentence}" for sentence in report.what_if.sentences()]
    return "\n".join(lines) + "\n"


def report_json(report: AuditReport) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=False) + "\n"


def history_text(history: TicketHistory) -> str:
    """A readable timeline: position, when (UTC and the desk's zone), who, what, automatic."""
    head = [
        f"ticket {history.ticket_id}: {history.subject!r} from {history.requester}",
        f"policy {history.policy_version}; desk zone {history.zone}"
        + ("" if history.as_of is None else f"; as of {iso(history.as_of)}"),
        "",
    ]
    rows = [("#", "when (UTC)", f"when ({history.zone})", "who", "status", "what")]
    for e in history.entries:
        what = e.what + (" [automatic]" if e.automatic else "")
        if e.automatic and e.written_at is not None and e.written_at != e.at:
            what += f" (written {iso(e.written_at)})"
        rows.append((str(e.position), iso(e.at), e.local, e.who, e.status.upper(), what))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    body = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5]
        for row in rows
    ]
    tail = [""]
    tail.append(f"status now: {history.status.upper()}")
    if history.next_timer:
        tail.append(f"next timer: {history.next_timer}")
    return "\n".join(head + body + tail) + "\n"


def history_json(history: TicketHistory) -> str:
    return json.dumps(history.to_dict(), indent=2) + "\n"


# -- HTML -----------------------------------------------------------------------------------------

_COLOURS = {
    "new": "#9aa5b1",
    "open": "#3b82f6",
    "pending": "#f59e0b",
    "solved": "#10b981",
    "closed": "#374151",
}

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#111827}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px}
.muted{color:#6b7280} .ok{color:#047857;font-weight:600} .bad{color:#b91c1c;font-weight:600}
table{border-collapse:collapse;margin:6px 0} td,th{padding:3px 10px 3px 0;text-align:left;
vertical-align:top} th{font-weight:600;color:#374151}
.v td{border-top:1px solid #e5e7eb} code{font-size:12px}
.ticket{margin:14px 0 18px;padding:8px 10px;border:1px solid #e5e7eb;border-radius:6px}
.ticket h3{font-size:14px;margin:0 0 4px} .legend span{margin-right:14px;white-space:nowrap}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;
margin-right:4px}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _legend() -> str:
    swatches = "".join(
        f'<span><i class="sw" style="background:{colour}"></i>{name.upper()}</span>'
        for name, colour in _COLOURS.items()
    )
    marks = (
        "<span>&#9679; agent message</span><span>&#9675; customer message</span>"
        '<span style="color:#dc2626">&#9650; reopened</span>'
        '<span style="color:#7c3aed">&#9670; follow-up</span>'
        "<span>&#9632; automatic (timer)</span>"
    )
    return f'<p class="legend">{swatches}{marks}</p>'


def _drawn(instant: _dt.datetime) -> _dt.datetime:
    """An instant to draw: a time stored without offset (reported as a violation) is drawn
    as UTC rather than breaking the timeline."""
    return instant.replace(tzinfo=_dt.UTC) if instant.utcoffset() is None else instant


def _svg(history: TicketHistory, end: _dt.datetime) -> str:
    entries = history.entries
    if not entries:
        return ""
    width, left, right, top, band = 880, 8, 8, 18, 16
    start = _drawn(entries[0].at)
    stop = max(_drawn(end), *(_drawn(e.at) for e in entries))
    span = max((stop - start).total_seconds(), 1.0)

    def x(instant: _dt.datetime) -> float:
        return left + (width - left - right) * (_drawn(instant) - start).total_seconds() / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="64" '
        f'viewBox="0 0 {width} 64" role="img" aria-label="timeline of ticket '
        f'{_e(history.ticket_id)}">'
    ]
    for index, entry in enumerate(entries):
        until = entries[index + 1].at if index + 1 < len(entries) else stop
        x0, x1 = x(entry.at), x(until)
        colour = _COLOURS.get(entry.status, "#d1d5db")
        parts.append(
            f'<rect x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 0.8):.1f}" height="{band}" '
            f'fill="{colour}"><title>{_e(entry.status.upper())} from {_e(iso(entry.at))}'
            f"</title></rect>"
        )
    mid = top + band / 2
    for entry in entries:
        cx = x(entry.at)
        tip = (
            f"<title>{_e(entry.position)}. {_e(iso(entry.at))} {_e(entry.who)}: "
            f"{_e(entry.what)}</title>"
        )
        if entry.automatic:
            parts.append(
                f'<rect x="{cx - 4:.1f}" y="{top + band + 4}" width="8" height="8" '
                f'fill="#111827">{tip}</rect>'
            )
        elif entry.kind == "Reopened":
            parts.append(f'<path d="M{cx:.1f} {top - 12} l5 9 h-10 z" fill="#dc2626">{tip}</path>')
        elif entry.kind == "FollowUpCreated":
            parts.append(
                f'<path d="M{cx:.1f} {top - 13} l5 5 l-5 5 l-5 -5 z" fill="#7c3aed">{tip}</path>'
            )
        elif entry.kind == "Responded":
            agent = "asked the customer" in entry.what or entry.what.startswith("replied")
            fill = "#ffffff" if not agent else "#111827"
            parts.append(
                f'<circle cx="{cx:.1f}" cy="{mid:.1f}" r="4" fill="{fill}" stroke="#111827" '
                f'stroke-width="1.3">{tip}</circle>'
            )
        else:
            parts.append(
                f'<line x1="{cx:.1f}" y1="{top - 3}" x2="{cx:.1f}" y2="{top + band + 3}" '
                f'stroke="#111827" stroke-width="1.2">{tip}</line>'
            )
    parts.append(
        f'<text x="{left}" y="{top + band + 28}" font-size="11" fill="#4b5563">'
        f"{_e(iso(start))}</text>"
        f'<text x="{width - right}" y="{top + band + 28}" font-size="11" fill="#4b5563" '
        f'text-anchor="end">{_e(iso(stop))}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _ticket_block(history: TicketHistory, end: _dt.datetime, violations: Sequence[str]) -> str:
    rows = "".join(
        f"<tr><td>{_e(e.position)}</td><td><code>{_e(iso(e.at))}</code></td>"
        f"<td>{_e(e.local)}</td><td>{_e(e.who)}</td><td>{_e(e.status.upper())}</td>"
        f"<td>{_e(e.what)}{' <b>[automatic]</b>' if e.automatic else ''}</td></tr>"
        for e in history.entries
    )
    problems = "".join(f'<li class="bad">{_e(text)}</li>' for text in violations)
    return (
        f'<div class="ticket"><h3>{_e(history.subject)} '
        f'<span class="muted">ticket {_e(history.ticket_id)} · {_e(history.requester)} · '
        f"now {_e(history.status.upper())}</span></h3>"
        + (f"<ul>{problems}</ul>" if problems else "")
        + _svg(history, end)
        + "<details><summary>events</summary><table><tr><th>#</th><th>UTC</th>"
        f"<th>{_e(history.zone)}</th><th>who</th><th>status</th><th>what</th></tr>{rows}"
        "</table></details></div>"
    )


def report_html(report: AuditReport) -> str:
    """One self-contained HTML page: result, metrics, violations, what-if, and an SVG
    timeline per ticket in `report.timelines`."""
    m = report.metrics
    verdict = (
        '<p class="ok">CLEAN: no violation</p>'
        if report.clean
        else f'<p class="bad">{report.violation_count} violation(s)</p>'
    )
    metrics = [
        ("tickets", f"{m.tickets} (" + ", ".join(f"{n} {c}" for n, c in m.by_status) + ")"),
        ("events checked", str(m.events)),
        ("first response", _summary(m.first_response)),
        ("time to solve", _summary(m.time_to_solve)),
        ("solves", f"{m.agent_solves} by agents, {m.automatic_solves} automatic"),
        ("automatic closes", str(m.automatic_closes)),
        ("reopens", str(m.reopens)),
        ("follow-ups", str(m.follow_ups)),
        ("longest timer lag", duration(m.max_timer_lag_seconds)),
    ]
    metric_rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in metrics)
    violation_rows = "".join(
        f'<tr class="v"><td><code>{_e(v.rule)}</code></td><td>{_e(v.message)}</td></tr>'
        for v in report.violations
    )
    by_ticket: dict[object, list[str]] = {}
    for v in report.violations:
        by_ticket.setdefault(v.ticket_id, []).append(f"[{v.rule}] {v.message}")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>supportflow audit: {_e(report.store or 'desk')}</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<h1>supportflow audit</h1><p class="muted">{_e(report.store or "a desk")} · audit '
        f"time {_e(iso(report.audit_time))} ({_e(_audit_time_note(report))}) · log position "
        f"{_e(report.log_position)} · policies {_e(', '.join(report.policies))}</p>",
        verdict,
        f"<h2>Metrics</h2><table>{metric_rows}</table>",
    ]
    if report.violations:
        rules = "".join(
            f"<tr><td><code>{_e(name)}</code></td><td>{_e(text)}</td></tr>"
            for name, text in RULES.items()
            if any(v.rule == name for v in report.violations)
        )
        parts.append(
            f"<h2>Violations</h2><table>{violation_rows}</table>"
            + (
                f"<p>… and {report.violations_truncated} more.</p>"
                if report.violations_truncated
                else ""
            )
            + f"<details><summary>rules</summary><table>{rules}</table></details>"
        )
    if report.what_if is not None:
        items = "".join(f"<li>{_e(s)}</li>" for s in report.what_if.sentences())
        parts.append(
            f"<h2>What if policy <code>{_e(report.what_if.policy_version)}</code></h2>"
            f"<ul>{items}</ul>"
        )
    if report.timelines:
        parts.append(f"<h2>Timelines ({len(report.timelines)} tickets)</h2>{_legend()}")
        for history in report.timelines:
            parts.append(
                _ticket_block(history, report.audit_time, by_ticket.get(history.ticket_id, []))
            )
    parts.append("</body></html>\n")
    return "\n".join(parts)
