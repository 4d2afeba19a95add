"""Telephony profiles as JSON files: the built-ins keep their scripts; a bad file is one clear error."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from daily_sip.standin.config import EmulatorConfig
from daily_sip.standin.telephony import BUILT_IN, Script, load_profile, script_for


def test_built_in_profiles_are_the_scripts_the_stand_in_always_had():
    assert script_for("sip-code", "busy") == Script(False, "error", 486, "SIP 486 Busy Here")
    assert script_for("free-text", "noanswer") == Script(True, "error", 408, "Call was not answered")
    assert script_for("stopped", "declined") == Script(True, "stopped", 603, None)
    assert script_for("connected-stopped", "notfound") == Script(True, "stopped", 404, None)
    assert script_for("sip-code", "answer") is None
    for name in BUILT_IN:
        assert set(load_profile(name)) == {"busy", "noanswer", "declined", "unreachable", "notfound"}


def test_a_recorded_profile_overrides_its_base_outcome_by_outcome(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(
        json.dumps(
            {
                "format": "daily-sip/telephony-profile",
                "version": 1,
                "base": "free-text",
                "outcomes": {
                    "busy": {"events": ["dialout.connected", "dialout.error"], "error_msg": "Busy!"}
                },
                "observation": {"anything": "kept for people"},
            }
        )
    )
    scripts = load_profile(str(path))
    assert scripts["busy"] == Script(True, "error", 486, "Busy!")  # the code defaults by outcome
    assert scripts["declined"] == load_profile("free-text")["declined"]
    assert EmulatorConfig(telephony_profile=str(path)).telephony_profile == str(path)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ({"format": "something-else"}, "not a daily-sip/telephony-profile file"),
        (
            {"format": "daily-sip/telephony-profile", "outcomes": {"busy": {"events": ["dialout.answered"]}}},
            "outcomes.busy.events is ['dialout.answered']; the stand-in replays",
        ),
        (
            {
                "format": "daily-sip/telephony-profile",
                "outcomes": {"hangup": {"events": ["dialout.stopped"]}},
            },
            "outcomes.hangup: not a failing outcome",
        ),
    ],
)
def test_a_bad_profile_file_names_what_is_wrong(tmp_path, content, says):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match="telephony_profile") as err:
        EmulatorConfig(telephony_profile=str(path))
    assert says in str(err.value)


def test_the_emulator_refuses_a_missing_profile_file_before_serving(tmp_path):
    missing = tmp_path / "no.json"
    result = subprocess.run(
        [sys.executable, "-m", "daily_sip.standin", "--port", "0", "--telephony-profile", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "400"},  # typer's error box, one line wide
    )
    assert result.returncode == 2 and result.stdout == ""  # no URL: it never served
    assert "telephony_profile must be one of sip-code, free-text, stopped, connected-stopped" in result.stderr
    assert f"or a profile JSON file (daily-sip doctor --dial writes one), got '{missing}'" in result.stderr
