"""What an operator may write in a campaign: real names, any-case schemes, case-sensitive user parts,
numbers that YAML would mangle; and how the Prefect form shows the flow's parameters."""

from __future__ import annotations

import pytest
import yaml
from prefect.utilities.callables import parameter_schema
from pydantic import ValidationError

from daily_sip.flows.campaign.model import Campaign, CampaignFileError, load_campaign
from daily_sip.flows.dial_campaign import dial_campaign


def campaign(*targets: dict) -> Campaign:
    return Campaign(targets=list(targets))


@pytest.mark.parametrize("name", ["👨‍💻 Dev bridge", "می‌خواهم", "👩🏽‍🚀", "Zürich"])
def test_names_with_zero_width_joiners_are_accepted(name):
    assert campaign({"sip_uri": "sip:a@x.example.com", "display_name": name}).targets[0].display_name == name


@pytest.mark.parametrize("name", ["a\u200bb", "line\nbreak", "bidi\u202eoverride"])
def test_invisible_and_control_characters_are_still_refused(name):
    with pytest.raises(ValidationError, match="control characters"):
        campaign({"sip_uri": "sip:a@x.example.com", "display_name": name})


def test_the_scheme_is_case_insensitive_and_written_one_way():
    assert campaign({"sip_uri": "SIP:Bridge@x.example.com"}).targets[0].sip_uri == "sip:Bridge@x.example.com"


def test_user_part_case_makes_different_bridges_host_case_does_not():
    both = campaign({"sip_uri": "sip:Bridge@x.example.com"}, {"sip_uri": "sip:bridge@x.example.com"})
    assert len(both.targets) == 2
    with pytest.raises(ValidationError, match=r"is also targets\.0"):
        campaign({"sip_uri": "sip:bridge@X.Example.com"}, {"sip_uri": "SIP:bridge@x.example.com"})


def test_unquoted_numeric_dtmf_is_refused_with_quote_it(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("targets:\n  - sip_uri: sip:a@x.example.com\n    dtmf: 0123\n")
    with pytest.raises(CampaignFileError) as info:
        load_campaign(str(path))
    assert "targets.0.dtmf: YAML reads the unquoted 0123 as the number 83" in str(info.value)
    assert 'quote it: dtmf: "0123"' in str(info.value)
    path.write_text("targets:\n  - sip_uri: sip:a@x.example.com\n    dtmf: '0123'\n")
    assert load_campaign(str(path)).targets[0].dtmf == "0123"


def test_form_shows_titles_and_plain_inputs_for_optional_text():
    schema = parameter_schema(dial_campaign.fn).model_dump()
    props = schema["properties"]
    assert props["credentials_block"]["title"] == "Daily credentials block"
    assert props["webhook_url"]["title"] == "Webhook receiver URL"
    target = schema["definitions"]["Target"]["properties"]
    fields = [
        props["credentials_block"],
        props["webhook_url"],
        target["display_name"],
        target["dtmf"],
        schema["definitions"]["Campaign"]["properties"]["room"],
    ]
    for field in fields:
        assert "anyOf" not in field and field["type"] == "string", field
    # Left empty in the form, they mean "not set".
    c = Campaign(targets=[{"sip_uri": "sip:a@x.example.com", "display_name": "", "dtmf": ""}], room="")
    assert (c.room, c.targets[0].display_name, c.targets[0].dtmf) == (None, None, None)


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({"Foo": "x"}, "header 'Foo' is not allowed"),
        ({"X-Ok": "a\nb"}, "header 'X-Ok' has control characters"),
    ],
)
def test_a_bad_header_is_reported_under_its_field(tmp_path, headers, words):
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "targets": [
                    {"sip_uri": "sip:a@x.example.com"},
                    {"sip_uri": "sip:b@x.example.com", "headers": headers},
                ]
            }
        )
    )
    with pytest.raises(CampaignFileError) as info:
        load_campaign(str(path))
    assert f"targets.1.headers: {words}" in str(info.value), str(info.value)


@pytest.mark.parametrize(
    "name", ["Ops\n## ✅ succeeded: 4/4 joined", "title\x1b]0;pwned\x07", "bidi\u202eoverride", "cr\rline"]
)
def test_a_campaign_name_is_one_line_without_control_characters(tmp_path, name):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"name": name, "targets": [{"sip_uri": "sip:a@x.example.com"}]}))
    with pytest.raises(CampaignFileError) as info:
        load_campaign(str(path))
    assert "\n  name: contains control characters" in str(info.value), str(info.value)
