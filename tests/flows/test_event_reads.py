"""What a campaign costs the Prefect server while it waits: history reads only when a leg stalls.

Real processes (Prefect server, stand-in, receiver). The cost is read from the run's own report
(``duplicate_events``: events the run was handed twice, i.e. read again from the history), not
timed: speed is the benchmarks' business.
"""

from __future__ import annotations

from .test_dial_campaign import campaign, run


async def test_events_that_arrive_live_are_not_read_again(stack):
    """Every event came on the live stream within seconds: no history was re-read, no duplicates.

    A run used to re-read its room's whole event history every 3 s; 100 waiting campaigns made
    that a steady load on the server and thousands of duplicate events per campaign.
    """
    c = campaign(
        "sip:a@b.example.com",
        "sip:c@b.example.com",
        after_answer={"mode": "hang_up_after", "hold_seconds": 4.5},
    )
    _state, report = await run(stack, c)
    assert [t.status for t in report.targets] == ["answered", "answered"]
    assert report.events_received >= 6  # connected, answered, stopped for each leg
    assert report.duplicate_events == 0
