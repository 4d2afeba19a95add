"""Request models follow Daily's documented rules for fields Daily would refuse (issue 22, items 7-10)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from daily_sip.tasks.models import RoomProperties, SipCallTransfer, SipSettings, StartDialOut, Webhook

NUMBER_ID = "34b0eb2b-6f0a-4e57-9b6c-1c2f6c1d2e3f"


@pytest.mark.parametrize("model", [StartDialOut, SipCallTransfer])
def test_caller_id_is_the_id_of_a_purchased_number_not_the_number(model):
    base = (
        {"phone_number": "+14155550100"}
        if model is StartDialOut
        else {"session_id": "s", "to_end_point": "+14155550100"}
    )
    assert model(**base, caller_id=NUMBER_ID).to_body()["callerId"] == NUMBER_ID
    with pytest.raises(ValidationError) as info:
        model(**base, caller_id="+15550001111")
    [error] = info.value.errors()
    assert error["loc"] in (("callerId",), ("caller_id",))
    assert "is a phone number" in error["msg"] and "id of a purchased number" in error["msg"]
    assert "\n" not in error["msg"]


@pytest.mark.parametrize("extension", ["12w34", "W1", "", "1" * 21, "12 34"])
def test_extension_is_dtmf_digits_only(extension):
    with pytest.raises(ValidationError, match="waitBeforeExtensionDialSec"):
        StartDialOut(phone_number="+14155550100", extension=extension)
    assert StartDialOut(phone_number="+14155550100", extension="1234#*").extension == "1234#*"


def test_sip_provider_is_daily_or_signalwire():
    for provider in ("daily", "signalwire"):
        assert SipSettings(provider=provider).to_body()["provider"] == provider
    with pytest.raises(ValidationError, match="'daily' or 'signalwire'"):
        SipSettings(provider="twilio")


def test_exp_and_nbf_keep_their_fraction_and_ints_stay_ints():
    assert RoomProperties(exp=1_800_000_000.25, nbf=1_700_000_000).to_body() == {
        "exp": 1_800_000_000.25,
        "nbf": 1_700_000_000,
    }


@pytest.mark.parametrize(
    ("state", "failed"),
    [
        ("ACTIVE", False),
        (1, False),
        ("FAILED", True),
        ("INACTIVE", True),
        ("failed", True),
        (0, True),
        (2, True),
    ],
)
def test_webhook_not_delivering_in_either_of_dailys_spellings(state, failed):
    # Daily's pages say FAILED in one place and INACTIVE in another; an old spec used numbers.
    assert Webhook(uuid="u", url="https://x.example.com", state=state).failed is failed
