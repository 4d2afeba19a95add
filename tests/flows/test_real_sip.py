"""A campaign over real SIP: the stand-in in ``--sip-mode real`` calls SIPp and PJSIP far ends on
loopback, and the report must say what those far ends did.

Needs SIPp (Debian ``sip-tester``) and PJSIP's binding (``pip install 'daily-sip-flows[sip]'``);
.ci/run installs both, and with CI set a missing one fails instead of skipping.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from daily_sip.flows.campaign.model import Campaign
from daily_sip.flows.dial_campaign import dial_campaign

from .conftest import CampaignStack, start_stack, stop_stack

SCENARIOS = Path(__file__).parent.parent / "sip" / "scenarios"
MISSING = [
    what
    for what, ok in (
        ("sipp (apt-get install sip-tester)", shutil.which("sipp") is not None),
        ("pjsua2 (pip install 'daily-sip-flows[sip]')", importlib.util.find_spec("pjsua2") is not None),
    )
    if not ok
]
pytestmark = pytest.mark.skipif(
    bool(MISSING) and not os.environ.get("CI"), reason=f"real-SIP test needs {', '.join(MISSING)}"
)

#: The IVR's PIN and the script the campaign plays to it: "12", a 1 s pause, "34#".
PIN, SCRIPT, DIGIT_MS = "1234", "12,34#", 100


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class FarEnds:
    sipp: dict[str, tuple[int, subprocess.Popen]]
    ivr_port: int
    ivr: subprocess.Popen
    ivr_log: Path

    def uri(self, name: str) -> str:
        port = self.ivr_port if name == "ivr" else self.sipp[name][0]
        return f"sip:{name}@127.0.0.1:{port}"

    def ivr_records(self) -> list[dict]:
        if not self.ivr_log.exists():
            return []
        return [json.loads(line) for line in self.ivr_log.read_text().splitlines()]


@pytest.fixture(scope="module")
def far_ends(tmp_path_factory) -> Iterator[FarEnds]:
    logs = tmp_path_factory.mktemp("sip-far-ends")
    sipp = {}
    for name in ("answer", "busy", "noanswer", "hangup", "notfound"):
        port = free_udp_port()
        # -m 1: one call, then exit 0 only if the whole scenario (ACK, CANCEL or BYE included) ran.
        cmd = ["sipp", "-sf", str(SCENARIOS / f"{name}.xml"), "-i", "127.0.0.1", "-p", str(port)]
        cmd += ["-m", "1", "-nostdin", "-trace_msg", "-message_file", str(logs / f"{name}.log")]
        sipp[name] = (
            port,
            subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True),
        )
    ivr_port, ivr_log = free_udp_port(), logs / "ivr.jsonl"
    ivr = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daily_sip.standin.sip_farend",
            "--bind",
            f"127.0.0.1:{ivr_port}",
            *("--pin", PIN),
            *("--out", str(ivr_log)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert ivr.stdout is not None and ivr.stdout.readline().strip() == "ready", ivr.stderr
        yield FarEnds(sipp, ivr_port, ivr, ivr_log)
    finally:
        for proc in [ivr] + [p for _, p in sipp.values()]:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture(scope="module")
def sip_stack(prefect_server, far_ends) -> Iterator[CampaignStack]:
    # PJSIP's build carries at most 4 calls at once: the room's session limit keeps the rest waiting.
    s = start_stack(
        prefect_server.api_url, sip_mode="real", sip_bind=f"127.0.0.1:{free_udp_port()}", session_limit=4
    )
    yield s
    stop_stack(s)


async def test_campaign_against_real_far_ends(sip_stack, far_ends):
    c = Campaign.model_validate(
        {
            "name": "real-sip",
            "targets": [
                {"sip_uri": far_ends.uri("busy")},
                {"sip_uri": far_ends.uri("notfound")},
                {"sip_uri": far_ends.uri("noanswer")},
                {"sip_uri": far_ends.uri("hangup")},
                {
                    "sip_uri": far_ends.uri("ivr"),
                    "dtmf": SCRIPT,
                    "dtmf_digit_ms": DIGIT_MS,
                    "dtmf_delay_seconds": 0.2,
                    "join_confirm_seconds": 0.5,
                },
                {"sip_uri": far_ends.uri("answer")},
            ],
            "ring_timeout_seconds": 10,
            # Longer than the hang-up far end waits (0.5 s), so it hangs up first.
            "after_answer": {"mode": "hang_up_after", "hold_seconds": 1.5},
            "success": {"min_answered_fraction": 0},
            "ready_timeout_seconds": 5,
        }
    )
    state = await dial_campaign(campaign=c, webhook_url=sip_stack.webhook_url, return_state=True)
    report = await state.aresult(raise_on_failure=False)
    assert state.is_completed(), state.message
    by = {t.sip_uri.split("@")[0][4:]: t for t in report.targets}
    got = {name: (t.status, t.sip_code) for name, t in by.items()}
    assert got == {
        "busy": ("busy", 486),
        "notfound": ("unreachable", 404),
        "noanswer": ("no_answer", 408),  # the stand-in's ring timeout (1.5 s) CANCELs it
        "hangup": ("answered", got["hangup"][1]),
        "ivr": ("joined", got["ivr"][1]),
        "answer": ("answered", got["answer"][1]),
    }, got
    assert by["hangup"].detail == "far end hung up"

    # The IVR heard exactly the script, with its pause: the second sendDTMF starts 2 digits of
    # 100 ms plus the 1 s pause after the first.
    heard = [r for r in far_ends.ivr_records() if r["event"] == "digit"]
    ivr_leg = next(leg for leg in sip_stack.legs() if leg["destination"] == far_ends.uri("ivr"))
    assert [r["digit"] for r in heard] == list(PIN + "#"), (ivr_leg, far_ends.ivr_records())
    gap = heard[2]["t"] - heard[0]["t"]
    assert abs(gap - (2 * DIGIT_MS / 1000 + 1.0)) <= 0.1, gap
    assert [r["accepted"] for r in far_ends.ivr_records() if r["event"] == "entry"] == [True]

    # Every SIPp far end ran its scenario to the end: the ACKs, the CANCEL of the ringing call,
    # the BYE of the answered one, the 200 to the far end's own BYE. None is left mid-dialog.
    for name, (_, proc) in far_ends.sipp.items():
        try:
            rc = proc.wait(10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"SIPp far end {name!r} still has its call open")
        assert rc == 0, (name, proc.stderr.read() if proc.stderr else "")
    # The IVR's call was hung up by the campaign (BYE), and nothing is up at the stand-in.
    for _ in range(100):
        if any(r["event"] == "ended" for r in far_ends.ivr_records()):
            break
        await asyncio.sleep(0.05)
    assert [r["verdict"] for r in far_ends.ivr_records() if r["event"] == "ended"] == ["accepted"]
    assert not [leg for leg in sip_stack.legs() if leg["active"]]
