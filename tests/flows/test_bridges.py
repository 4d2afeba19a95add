"""Bridge profiles and DTMF scripts: what a target is dialled with, and which scripts are refused.

Pure model tests: no process, no request.
"""

from __future__ import annotations

import pytest

from daily_sip.flows.campaign.bridges import PROFILES, BridgeError, plan
from daily_sip.flows.campaign.dtmf import MAX_TONES_PER_CALL, parse_script
from daily_sip.flows.campaign.model import Campaign, Target, describe_errors


def target(**spec) -> Target:
    return Campaign.model_validate({"targets": [spec]}).targets[0]


@pytest.mark.parametrize(
    ("spec", "uri", "dtmf"),
    [
        # Zoom CRC: passcode in the URI (no IVR), or the IVR takes it by DTMF.
        (
            {"bridge": "zoom", "meeting_id": "845 1234 5678", "passcode": "123456"},
            "sip:84512345678.123456@zoomcrc.com",
            None,
        ),
        ({"bridge": "zoom", "meeting_id": "84512345678"}, "sip:84512345678@zoomcrc.com", None),
        (
            {"bridge": "zoom", "meeting_id": "84512345678", "passcode": "123456", "join_via": "dtmf"},
            "sip:84512345678@zoomcrc.com",
            "123456#",
        ),
        (
            {"bridge": "zoom", "meeting_id": "84512345678", "passcode": "1", "sip_host": "162.255.37.11"},
            "sip:84512345678.1@162.255.37.11",
            None,
        ),
        # Webex: meeting number at the site, numeric password by DTMF.
        (
            {"bridge": "webex", "meeting_id": "2435 772 4034", "passcode": "77448755", "webex_site": "acme"},
            "sip:24357724034@acme.webex.com",
            "77448755#",
        ),
        (
            {"bridge": "webex", "meeting_id": "24357724034", "webex_site": "meet265.webex.com"},
            "sip:24357724034@meet265.webex.com",
            None,
        ),
        # Teams via Cloud Video Interop: the field order differs per gateway.
        (
            {"bridge": "teams", "meeting_id": "111962549", "tenant_key": "12345678"},
            "sip:12345678.111962549@t.plcm.vc",
            None,
        ),
        (
            {"bridge": "teams", "meeting_id": "1198563286", "tenant_key": "cdw", "teams_provider": "cisco"},
            "sip:1198563286.cdw@m.webex.com",
            None,
        ),
        (
            {
                "bridge": "teams",
                "meeting_id": "4455",
                "tenant_key": "video.example.com",
                "teams_provider": "pexip",
            },
            "sip:4455@video.example.com",
            None,
        ),
        (
            {"bridge": "teams", "meeting_id": "111962549", "tenant_key": "12345678", "join_via": "dtmf"},
            "sip:12345678@t.plcm.vc",
            "111962549#",
        ),
        (
            {
                "bridge": "teams",
                "meeting_id": "4455",
                "tenant_key": "video.example.com",
                "teams_provider": "pexip",
                "join_via": "dtmf",
            },
            "sip:teams@video.example.com",
            "4455#",
        ),
        # PBX: your URI, conference number and PIN by DTMF with a pause between.
        (
            {
                "bridge": "pbx",
                "sip_uri": "sip:conf@pbx.example.com",
                "meeting_id": "4711",
                "passcode": "1234",
            },
            "sip:conf@pbx.example.com",
            "4711#,,1234#",
        ),
        (
            {"bridge": "pbx", "sip_uri": "sip:ivr-1234@pbx.example.com", "passcode": "1234"},
            "sip:ivr-1234@pbx.example.com",
            "1234#",
        ),
        ({"sip_uri": "sip:a@b.example.com", "dtmf": "12#"}, "sip:a@b.example.com", "12#"),
    ],
)
def test_each_profile_builds_uri_and_script(spec, uri, dtmf):
    t = target(**spec)
    assert (t.uri, t.plan.dtmf) == (uri, dtmf)


def test_every_field_can_be_overridden():
    t = target(
        bridge="zoom",
        meeting_id="84512345678",
        passcode="123456",
        sip_uri="sip:84512345678@global.zoomcrc.com",
        dtmf="w123456#,,*",
        dtmf_delay_seconds=9,
        join_confirm_seconds=40,
    )
    assert t.uri == "sip:84512345678@global.zoomcrc.com" and t.plan.dtmf == "w123456#,,*"
    assert (t.plan.first_prompt_seconds, t.plan.join_confirm_seconds) == (9, 40)
    # Your own URI with a profile: the passcode can then only go by DTMF.
    assert target(bridge="zoom", passcode="99", sip_uri="sip:1@zoomcrc.com").plan.dtmf == "99#"


def test_profile_defaults_are_used_when_not_overridden():
    t = target(bridge="webex", meeting_id="123", webex_site="acme", passcode="1")
    assert t.plan.first_prompt_seconds == PROFILES["webex"].first_prompt_seconds
    assert t.plan.join_confirm_seconds == PROFILES["webex"].join_confirm_seconds
    assert t.seconds_to_join() == pytest.approx(5 + 1.0 + 20)  # prompt + 2 tones x 0.5 s + confirm


def test_plan_names_the_missing_field():
    with pytest.raises(BridgeError) as info:
        plan("teams", meeting_id="1")
    assert info.value.field == "tenant_key"


def test_script_steps_split_at_20_tones_after_a_hash_with_pauses():
    s = parse_script("123456789#12345678901234#,,4711#w")
    assert [(st.tones, st.wait_before) for st in s.steps] == [
        ("123456789#", 0.0),
        ("12345678901234#", 0.0),
        ("4711#", 2.0),
    ]
    assert s.trailing_pause == 0.5
    long = parse_script("1" * 45)
    assert [len(st.tones) for st in long.steps] == [20, 20, 5]
    assert all(len(st.tones) <= MAX_TONES_PER_CALL for st in long.steps)
    # Each call waits for the previous tones to play (100 ms each here), plus the pause.
    assert s.timed(100) == [(0.0, "123456789#"), (1.0, "12345678901234#"), (4.5, "4711#")]
    assert s.duration(100) == pytest.approx(4.5 + 0.5 + 0.5)
    assert parse_script("W,1").leading_pause() == 2.0


@pytest.mark.parametrize(
    ("spec", "line"),
    [
        (
            {"sip_uri": "sip:a@b.c", "dtmf": "12X#"},
            "targets.0.dtmf: has invalid tones ['X']; allowed are 0-9, A-D, * and #, and the pauses",
        ),
        ({"sip_uri": "sip:a@b.c", "dtmf": ",,,"}, "targets.0.dtmf: has only pauses: give at least one tone"),
        ({"sip_uri": "sip:a@b.c", "dtmf": "1" * 201}, "targets.0.dtmf: has 201 characters, at most 200"),
        (
            {"sip_uri": "sip:a@b.c", "dtmf": "1" * 100 + "," * 90},
            "targets.0.dtmf: takes 140.0 s to send, at most 120 s",
        ),
        ({"bridge": "zoom"}, "targets.0.meeting_id: the zoom profile needs the meeting ID"),
        ({"bridge": "zoom", "meeting_id": "1", "passcode": "ab12"}, "targets.0.passcode: must be digits"),
        (
            {"bridge": "webex", "meeting_id": "1"},
            "targets.0.webex_site: the webex profile needs your Webex site",
        ),
        (
            {"bridge": "webex", "meeting_id": "1", "webex_site": "a", "passcode": "1", "join_via": "uri"},
            "targets.0.join_via: Webex documents no way to put the password into the video address",
        ),
        (
            {"bridge": "teams", "meeting_id": "1", "tenant_key": "2", "passcode": "3"},
            "targets.0.passcode: Teams video interop joins with the VTC conference ID alone",
        ),
        ({"bridge": "pbx", "passcode": "1"}, "targets.0.sip_uri: the pbx profile dials the SIP URI you give"),
        ({"bridge": "skype", "sip_uri": "sip:a@b.c"}, "targets.0.bridge: Input should be 'generic', 'zoom'"),
    ],
)
def test_bad_scripts_and_profiles_give_one_line_naming_the_field(spec, line):
    with pytest.raises(ValueError) as info:
        Campaign.model_validate({"targets": [spec]})
    lines = describe_errors(info.value)
    assert len(lines) == 1 and lines[0].startswith(line), lines


def test_stay_mode_must_outlast_the_join_confirmation():
    with pytest.raises(ValueError) as info:
        Campaign.model_validate(
            {
                "targets": [{"sip_uri": "sip:a@b.c", "dtmf": "1#", "join_confirm_seconds": 60}],
                "after_answer": {"mode": "stay", "max_seconds": 30},
            }
        )
    assert describe_errors(info.value) == [
        "targets.0.join_confirm_seconds: the DTMF script and join confirmation take 63 s, longer than "
        "after_answer.max_seconds, so raise max_seconds"
    ]


def test_plain_dtmf_string_still_works_and_the_form_offers_the_profiles():
    t = target(sip_uri="sip:zoom-ops@bridge.example.com", dtmf="123456#", dtmf_delay_seconds=1)
    assert [st.tones for st in t.script.steps] == ["123456#"]
    schema = Campaign.model_json_schema()
    bridge = schema["$defs"]["Target"]["properties"]["bridge"]
    assert bridge["enum"] == ["generic", "zoom", "webex", "teams", "pbx"]
    assert {"meeting_id", "passcode"} <= set(schema["$defs"]["Target"]["properties"])
    assert "required" not in schema["$defs"]["Target"]  # a profile needs no SIP URI


def test_docstring_examples_hold():
    import doctest

    from daily_sip.flows.campaign import bridges, dtmf

    for module in (bridges, dtmf):
        assert doctest.testmod(module).failed == 0, module.__name__
