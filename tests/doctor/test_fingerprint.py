"""What a recording makes replayable: only what Daily did, never the doctor's own stop."""

from __future__ import annotations

from daily_sip.doctor.dial import Recording
from daily_sip.doctor.fingerprint import build


def recording(events: list[tuple[str, float, dict]], stops: list[dict], scenario: str) -> Recording:
    rec = Recording(destination="sip:me@pbx.example.com", scenario=scenario, room="r-1", user_id="u-1")
    rec.session_id = "3f1c2d9e-0000-4000-8000-000000000001"
    for kind, at, payload in events:
        envelope = {"version": "1.0.0", "type": kind, "id": f"e-{at}", "payload": {"room": "r-1", **payload}}
        rec.events.append(
            {
                "type": kind,
                "after_s": at,
                "received_unix": 0.0,
                "envelope": envelope,
                "headers": {},
                "signature_ok": True,
                "non_ascii_escaped": False,
            }
        )
    rec.stops = stops
    return rec


def test_a_call_the_doctor_had_to_stop_is_not_a_replayable_no_answer():
    rec = recording(
        [("dialout.connected", 0.8, {}), ("dialout.stopped", 90.4, {})],
        [{"when": "while up", "after_s": 90.0, "status": 200}],
        "no-answer",
    )
    profile = build(rec, "https://api.daily.co/v1")
    assert profile["outcomes"] == {}
    assert "still up when the doctor stopped it" in profile["not_replayable"]
    assert profile["observation"]["timings_s"]["stop_to_stopped_event"] == 0.4


def test_a_call_daily_ended_itself_is_replayable_with_its_error_text_and_code():
    text = "Call to sip:me@pbx.example.com failed: 480 Temporarily Unavailable"
    rec = recording(
        [("dialout.connected", 0.8, {}), ("dialout.error", 31.0, {"error_msg": text})],
        [{"when": "after the end", "after_s": 32.0, "status": 404}],
        "no-answer",
    )
    profile = build(rec, "https://api.daily.co/v1")
    entry = profile["outcomes"]["noanswer"]
    assert entry["events"] == ["dialout.connected", "dialout.error"] and entry["sip_code"] == 480
    assert entry["error_msg"] == "Call to <destination-1> failed: 480 Temporarily Unavailable"  # redacted
