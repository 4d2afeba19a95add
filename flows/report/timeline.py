"""What happened when: one lane per bridge (dialling, ringing, on call, DTMF marks, redials, end reason).

Two renderings of `CampaignReport.timeline` (the live board's record of every leg change):

* `text_timeline`: a fixed-width picture for the Prefect UI (a markdown artifact,
  ``<campaign>-timeline``) and terminals; no dependency;
* `render_png`: a picture file drawn with matplotlib (https://matplotlib.org), installed with the
  ``timeline`` extra (``pip install 'daily-sip-flows[timeline]'``); `daily-sip run --json-out
  report.json` writes ``report.timeline.png`` next to the JSON.

Example:
    ```python
    from daily_sip.flows.report.timeline import render_png, text_timeline

    print(text_timeline(report))
    render_png(report, "report.timeline.png")
    ```
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from daily_sip.flows.report.board import (
    ANSWERED,
    DIALLING,
    DTMF_SENT,
    ENDED,
    HANGING_UP,
    ON_CALL,
    REDIAL,
    RINGING,
)
from daily_sip.flows.report.escape import md, plain
from daily_sip.flows.report.model import CampaignReport

# Lane segments: the phase a span starts with -> what the span is.
SPAN_OF = {
    DIALLING: "dialling",
    RINGING: "ringing",
    ANSWERED: "on call",
    DTMF_SENT: "on call",
    ON_CALL: "on call",
    HANGING_UP: "on call",
}
COLOURS = {"dialling": "#b0b0b0", "ringing": "#f0a030", "on call": "#2ca02c"}
CHARS = {"dialling": "·", "ringing": "~", "on call": "█"}


@dataclass
class Lane:
    label: str
    spans: list[tuple[float, float, str]]  # (start s, end s, kind)
    dtmf: list[float]
    redials: list[float]
    end: tuple[float, str] | None  # (at s, outcome)
    status: str = ""


def lanes(report: CampaignReport) -> tuple[list[Lane], float]:
    """The lanes in seconds since the campaign started, and the total length in seconds."""
    t0 = report.started_at
    end_all = max([report.finished_at or t0] + [e.at for evs in report.timeline for e in evs])

    def s(at: datetime) -> float:
        return max(0.0, (at - t0).total_seconds())

    out = []
    for target, events in zip(report.targets, report.timeline or [[] for _ in report.targets], strict=False):
        label = plain(target.display_name or target.sip_uri)  # one line each, whatever the name holds
        lane = Lane(label, [], [], [], None, target.status.replace("_", " "))
        for i, e in enumerate(events):
            nxt = events[i + 1].at if i + 1 < len(events) else end_all
            kind = SPAN_OF.get(e.phase)
            if kind and nxt > e.at:
                if lane.spans and lane.spans[-1][2] == kind and abs(lane.spans[-1][1] - s(e.at)) < 1e-6:
                    lane.spans[-1] = (lane.spans[-1][0], s(nxt), kind)  # one bar for one call
                else:
                    lane.spans.append((s(e.at), s(nxt), kind))
            if e.phase == DTMF_SENT:
                lane.dtmf.append(s(e.at))
            elif e.phase == REDIAL:
                lane.redials.append(s(e.at))
            elif e.phase == ENDED:
                lane.end = (s(e.at), plain(e.note or target.status))
        out.append(lane)
    return out, max(s(end_all), 1.0)


def text_timeline(report: CampaignReport, width: int = 60, name_chars: int = 24, reasons: bool = True) -> str:
    """A fixed-width picture: ``·`` dialling, ``~`` ringing, ``█`` on call, ``#`` DTMF, ``↻`` redial.

    Each lane ends with its end reason, or with its outcome alone when ``reasons`` is false.
    """
    all_lanes, total = lanes(report)
    per = total / width
    name_w = min(name_chars, max([len(lane.label) for lane in all_lanes] + [6]))
    rows = [f"{'':{name_w}}  0 s{'':{width - 8}}{total:.0f} s"]
    for lane in all_lanes:
        cells = [" "] * width
        for start, end, kind in lane.spans:
            for col in range(int(start / per), min(width, max(int(start / per) + 1, int(end / per)))):
                cells[col] = CHARS[kind]
        for at in lane.dtmf:
            cells[min(width - 1, int(at / per))] = "#"
        for at in lane.redials:
            cells[min(width - 1, int(at / per))] = "↻"
        outcome = (lane.end[1] if lane.end else "") if reasons else lane.status
        rows.append(f"{lane.label[:name_w]:{name_w}} |{''.join(cells)}| {outcome}")
    legend = "· dialling  ~ ringing  █ on call  # DTMF sent  ↻ redial scheduled"
    return "\n".join([*rows, "", legend])


def timeline_markdown(report: CampaignReport) -> str:
    # The Prefect UI shows markdown artifacts in a column of ~75 monospace characters whatever the
    # window's width: lanes and outcome fit it; the reasons are in the results table beside it.
    # The lanes are a code block: no markup inside, and a fence longer than any run of backticks
    # in a name, so no name can close it.
    picture = text_timeline(report, width=32, name_chars=20, reasons=False)
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", picture)), default=0))
    return f"### {md(report.campaign)}: what happened when\n\n{fence}\n{picture}\n{fence}\n"


def render_png(report: CampaignReport, path: str | Path) -> Path:
    """Draw the timeline to a PNG (needs matplotlib: the ``timeline`` extra); returns the path."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    all_lanes, total = lanes(report)
    fig, ax = plt.subplots(figsize=(10, 1.6 + 0.55 * len(all_lanes)))
    for y, lane in enumerate(all_lanes):
        for start, end, kind in lane.spans:
            ax.broken_barh([(start, max(end - start, total / 400))], (y - 0.3, 0.6), color=COLOURS[kind])
        if lane.dtmf:
            ax.plot(lane.dtmf, [y] * len(lane.dtmf), "|", color="#1f4fb4", markersize=18, mew=2)
        if lane.redials:
            ax.plot(lane.redials, [y] * len(lane.redials), "o", color="#9467bd", markersize=7)
        if lane.end:
            ax.annotate(
                lane.end[1],
                (lane.end[0], y),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
    ax.set_yticks(range(len(all_lanes)), [lane.label for lane in all_lanes])
    ax.invert_yaxis()
    ax.set_xlim(0, total * 1.25)
    ax.set_xlabel(f"seconds since {report.started_at:%Y-%m-%d %H:%M:%S} UTC")
    ax.set_title(plain(f"{report.campaign}: {report.message}"), fontsize=10)
    handles = [Patch(color=c, label=k) for k, c in COLOURS.items()] + [
        plt.Line2D([], [], marker="|", ls="", color="#1f4fb4", mew=2, markersize=10, label="DTMF sent"),
        plt.Line2D([], [], marker="o", ls="", color="#9467bd", label="redial scheduled"),
    ]
    fig.legend(handles=handles, loc="lower center", fontsize=7, ncols=5, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    out = Path(path)
    with warnings.catch_warnings():
        # An emoji in a bridge's name has no glyph in the default font: drawn as a box, not an error.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig.tight_layout(rect=(0, 0.1, 1, 1))
        fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
