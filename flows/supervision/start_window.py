"""Too late is a verdict, not a dial: a run that starts past its campaign's start window touches nothing.

A run is *due* at its flow run's expected start time: the scheduled time of its first Scheduled
state, which Prefect keeps while the run waits for a worker or for a concurrency slot (a deployment
with ``collision_strategy: ENQUEUE``). It *starts* when the flow body begins. A run whose campaign
leaves ``start_window_seconds`` empty gets `SCHEDULED_WINDOW_SECONDS` when a deployment's schedule
created it, and no window otherwise (a "Run now", an event trigger, ``daily-sip run``: those are
due when they are asked for).
"""

from __future__ import annotations

from datetime import UTC, datetime

#: A scheduled campaign (the 08:55 stand-up) is pointless, or worse, much later: the meeting it
#: bridges has moved on. Five minutes covers a worker's poll interval and a slow start.
SCHEDULED_WINDOW_SECONDS = 300.0


class TooLateError(Exception):
    """The run started after its start window had closed; nothing was touched."""


def window_of(start_window_seconds: float | None, auto_scheduled: bool) -> float | None:
    """The start window a run gets: the campaign's, else the default for scheduled runs.

    >>> window_of(None, auto_scheduled=True), window_of(None, auto_scheduled=False), window_of(60, False)
    (300.0, None, 60)
    """
    if start_window_seconds is not None:
        return start_window_seconds
    return SCHEDULED_WINDOW_SECONDS if auto_scheduled else None


def _clock(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _span(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def too_late(due: datetime | None, started: datetime, window: float | None) -> str | None:
    """Why a run must not dial, or None when it is within its window (or has none).

    Example:
        >>> due = datetime(2026, 3, 2, 7, 55, tzinfo=UTC)
        >>> too_late(due, datetime(2026, 3, 2, 7, 59, tzinfo=UTC), 300) is None
        True
        >>> print(too_late(due, datetime(2026, 3, 2, 8, 40, 12, tzinfo=UTC), 300))
        too late to start: due 2026-03-02 07:55:00 UTC, started 2026-03-02 08:40:12 UTC (45 min 12 s \
late, start window 5 min); nothing was dialled
        >>> too_late(None, started=due, window=300) is None  # never scheduled: nothing to be late for
        True
    """
    if window is None or due is None:
        return None
    late = (started - due).total_seconds()
    if late <= window:
        return None
    return (
        f"too late to start: due {_clock(due)}, started {_clock(started)} "
        f"({_span(late)} late, start window {_span(window)}); nothing was dialled"
    )
