"""IVR bridges (`ivr-<digits>` user parts) over real HTTP: what they hear, and when they hang up.

A stand-in of this module's own: PIN timeout 1.5 s, hang-up 0.4 s after a wrong entry.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from daily_sip.standin.sip_uri import ivr_pin_for, outcome_for

from .support import FAST, Emu, launch, stop

# The reject delay is long enough that a loaded machine still sees the call up right after the tones.
IVR_TIMEOUT, REJECT_DELAY = 1.5, 1.5


@pytest.fixture(scope="module")
def ivr_emu() -> Iterator[Emu]:
    emu = launch(**FAST, ivr_timeout=IVR_TIMEOUT, ivr_reject_delay=REJECT_DELAY)
    yield emu
    stop(emu)


def answered_ivr(emu: Emu, user: str) -> tuple[str, str]:
    room = emu.dial_room()
    sid = emu.start_ok(room, sipUri=f"sip:{user}@pbx.example.com")
    emu.wait_leg(sid, lambda leg: leg["state"] == "answered")
    return room, sid


def dtmf(emu: Emu, room: str, sid: str, tones: str) -> None:
    r = emu.post(f"/rooms/{room}/dialOut/sendDTMF", {"sessionId": sid, "tones": tones, "digitDurationMs": 50})
    assert r.status_code == 200, r.text


def test_ivr_user_parts():
    users = ("ivr-4711", "IVR-0042.zoom", "ivr-12-b", "ivr", "ivr-", "ivr-12a", "ivrx-1")
    assert [ivr_pin_for(u) for u in users] == ["4711", "0042", "12", None, None, None, None]
    assert outcome_for("ivr-4711") == "ivr" and outcome_for("ivr") == "answer"


def test_right_pin_keeps_the_call_and_every_tone_is_recorded_with_its_time(ivr_emu):
    room, sid = answered_ivr(ivr_emu, "ivr-4711")
    dtmf(ivr_emu, room, sid, "47")
    time.sleep(0.2)
    dtmf(ivr_emu, room, sid, "11#")
    time.sleep(IVR_TIMEOUT + REJECT_DELAY)  # past the PIN timeout: an accepted call stays
    heard = ivr_emu.emu(f"legs/{sid}/dtmf")
    assert heard["state"] == "answered"
    assert [d["tones"] for d in heard["dtmf"]] == ["47", "11#"]
    assert 0.15 < heard["dtmf"][1]["ts"] - heard["dtmf"][0]["ts"] < 1.0
    assert heard["ivr"]["state"] == "accepted"
    assert [(e["digits"], e["accepted"]) for e in heard["ivr"]["entries"]] == [("4711", True)]
    # Tones after the PIN are in-meeting DTMF: recorded, but the verdict stands.
    dtmf(ivr_emu, room, sid, "99#")
    assert ivr_emu.leg(sid)["ivr"]["state"] == "accepted" and ivr_emu.leg(sid)["active"]


def test_wrong_pin_hangs_up_a_moment_later(ivr_emu):
    room, sid = answered_ivr(ivr_emu, "ivr-4711")
    dtmf(ivr_emu, room, sid, "1234#")
    assert ivr_emu.leg(sid)["active"], "the IVR does not hang up at once"
    leg = ivr_emu.wait_leg(sid, lambda leg: not leg["active"], timeout=3)
    assert leg["state"] == "stopped" and leg["end_reason"] == "remote-hangup"
    assert leg["ivr"]["state"] == "rejected"
    assert [(e["digits"], e["accepted"]) for e in leg["ivr"]["entries"]] == [("1234", False)]
    assert leg["events"][-1] == "dialout.stopped"


def test_no_pin_hangs_up_at_the_timeout(ivr_emu):
    room, sid = answered_ivr(ivr_emu, "ivr-4711")
    dtmf(ivr_emu, room, sid, "47")  # no '#': the entry never completes
    leg = ivr_emu.wait_leg(sid, lambda leg: not leg["active"], timeout=IVR_TIMEOUT + 2)
    assert leg["ivr"]["state"] == "timeout" and leg["ivr"]["pending"] == "47"
    assert leg["end_reason"] == "remote-hangup"
