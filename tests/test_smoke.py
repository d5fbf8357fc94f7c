"""The DESIGN §3 walk-through, end to end on the default store."""

from __future__ import annotations

from supportflow import ManualClock, Severity, Status, SupportDesk


def test_walkthrough_reaches_closed_and_follow_up(desk: SupportDesk, clock: ManualClock) -> None:
    """Submit, work, solve, close by timer, then a reply creates a linked follow-up."""
    tid = desk.submit(
        requester="ann@example.com", subject="Cannot restore", severity=Severity.CRITICAL
    )
    desk.assign(tid, agent="bob")
    desk.solve(tid, agent="bob", solution="Reinstall 4.2.1")
    clock.advance(days=4)
    assert desk.run_due_timers() == 1
    assert desk.get(tid).status is Status.CLOSED
    new = desk.customer_reply(tid, body="again", message_id="<m3@mail>")
    assert new != tid
    assert desk.get(new).follow_up_of == tid
    assert desk.get(tid).follow_ups == (new,)
