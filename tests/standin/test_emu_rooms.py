"""Auth, errors and rooms over real HTTP."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest

from .support import room_name

# Daily requires both fields whenever `sip` is an object.
SIP_ON = {"sip_mode": "dial-in", "display_name": "SIP caller"}

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_auth_errors(shared):
    url = f"{shared.base_url}/rooms"
    r = httpx.get(url, trust_env=False)
    assert r.status_code == 400 and r.json()["error"] == "authorization-header-error"
    r = httpx.get(url, headers={"Authorization": f"Token {shared.api_key}"}, trust_env=False)
    assert r.status_code == 400 and r.json()["error"] == "authorization-header-error"
    r = httpx.get(url, headers={"Authorization": "Bearer wrong-key"}, trust_env=False)
    assert r.status_code == 401
    assert set(r.json()) == {"error", "info"} and r.json()["error"] == "authentication-error"


def test_bad_json_and_non_object_bodies(shared):
    r = shared.client.post("/rooms", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "json-parsing-error"
    r = shared.post("/rooms", [1, 2])
    assert r.status_code == 400 and r.json()["error"] == "invalid-request-error"


def test_unknown_endpoint_has_the_error_shape(shared):
    r = shared.get("/no/such/thing")
    assert r.status_code == 404 and set(r.json()) == {"error", "info"}


def test_room_object_shape_and_round_trip(shared):
    name = room_name()
    r = shared.post("/rooms", {"name": name, "privacy": "private", "properties": {"enable_chat": True}})
    assert r.status_code == 200, r.text
    room = r.json()
    uuid.UUID(room["id"])
    assert room["name"] == name and room["api_created"] is True and room["privacy"] == "private"
    assert room["url"] == f"https://standin.daily.co/{name}"
    assert ISO_MS.match(room["created_at"])
    assert room["config"] == {"enable_chat": True}, "config holds only what was set"
    assert shared.get(f"/rooms/{name}").json() == room

    r = shared.post(f"/rooms/{name}", {"privacy": "public", "properties": {"enable_dialout": True}})
    assert r.status_code == 200
    assert r.json()["privacy"] == "public"
    assert r.json()["config"] == {"enable_chat": True, "enable_dialout": True}
    r = shared.post(f"/rooms/{name}", {"properties": {"enable_chat": None}})
    assert r.json()["config"] == {"enable_dialout": True}, "null unsets a property"

    r = shared.delete(f"/rooms/{name}")
    assert r.status_code == 200 and r.json() == {"deleted": True, "name": name}
    for call in (
        lambda: shared.get(f"/rooms/{name}"),
        lambda: shared.post(f"/rooms/{name}", {"privacy": "private"}),
        lambda: shared.delete(f"/rooms/{name}"),
        lambda: shared.get(f"/rooms/{name}/presence"),
    ):
        r = call()
        assert r.status_code == 404
        assert r.json()["error"] == "not-found" and name in r.json()["info"]


def test_room_names(shared):
    r = shared.post("/rooms", {})
    assert r.status_code == 200 and re.match(r"^[A-Za-z0-9]{10,}$", r.json()["name"])
    for bad in ("has space", "dots.not.ok", "x" * 129, "ünï"):
        r = shared.post("/rooms", {"name": bad})
        assert r.status_code == 400 and r.json()["error"] == "invalid-request-error", bad
    name = room_name()
    assert shared.post("/rooms", {"name": name + "_A-1"}).status_code == 200
    assert shared.post("/rooms", {"name": name}).status_code == 200
    r = shared.post("/rooms", {"name": name})
    assert r.status_code == 400 and "already exists" in r.json()["info"]


@pytest.mark.parametrize(
    ("props", "names"),
    [
        ({"no_such_property": 1}, "no_such_property"),
        ({"sip_uri": {"endpoint": "sip:x@y"}}, "sip_uri"),
        ({"enable_dialout": "yes"}, "enable_dialout"),
        ({"sip": "on"}, "sip"),
        ({"sip": {"sip_mode": "dial-out"}}, "sip.sip_mode"),
        ({"sip": {"display_name": 5}}, "sip.display_name"),
        ({"sip": {"video": "true"}}, "sip.video"),
        ({"sip": {"num_endpoints": 0}}, "sip.num_endpoints"),
        ({"sip": {"num_endpoints": 21}}, "sip.num_endpoints"),
        ({"sip": {"num_endpoints": "2"}}, "sip.num_endpoints"),
        ({"sip": {"codecs": {"audio": ["MP3"]}}}, "sip.codecs.audio"),
        ({"sip": {"codecs": {"video": ["AV1"]}}}, "sip.codecs.video"),
        ({"sip": {"codecs": {"data": ["X"]}}}, "data"),
        ({"sip": {"provider": "twilio"}}, "sip.provider"),
        ({"sip": {"force_digit_only_username": True, "num_endpoints": 2}}, "force_digit_only_username"),
        ({"sip": {"dialin_config": {"allow_room_start": 1}}}, "sip.dialin_config.allow_room_start"),
        ({"sip": {"dialin_config": {"bogus": 1}}}, "bogus"),
        ({"sip": {"extra": 1}}, "extra"),
        ({"dialout_config": {"allow_room_start": "true"}}, "dialout_config.allow_room_start"),
        ({"dialout_config": {"max_idle_timeout_sec": -1}}, "dialout_config.max_idle_timeout_sec"),
        ({"dialout_config": {"nope": 1}}, "nope"),
        ({"exp": "tomorrow"}, "exp"),
    ],
)
def test_invalid_properties_name_the_property(shared, props, names):
    r = shared.post("/rooms", {"name": room_name(), "properties": props})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid-request-error"
    assert names in r.json()["info"]


def test_update_validates_too_and_leaves_the_room_unchanged(shared):
    room = shared.make_room(enable_dialout=True)
    r = shared.post(f"/rooms/{room['name']}", {"properties": {"sip": {"num_endpoints": 99}}})
    assert r.status_code == 400 and "num_endpoints" in r.json()["info"]
    assert shared.get(f"/rooms/{room['name']}").json()["config"] == {"enable_dialout": True}
    r = shared.post(f"/rooms/{room['name']}", {"name": "rename-me"})
    assert r.status_code == 400 and "name" in r.json()["info"]


def test_sip_uri_endpoints_appear_and_disappear(shared):
    sip = {"sip_mode": "dial-in", "display_name": "Caller", "num_endpoints": 3, "codecs": {"audio": ["OPUS"]}}
    room = shared.make_room(sip=sip)
    config = room["config"]
    assert config["sip"] == sip
    endpoints = [config["sip_uri"]["endpoint"], *config["sip_uri"]["extra_endpoints"]]
    assert len(endpoints) == 3 and len(set(endpoints)) == 3
    assert all(e.startswith("sip:") for e in endpoints)

    one = shared.make_room(sip=dict(SIP_ON))["config"]["sip_uri"]
    assert set(one) == {"endpoint"}, "no extra_endpoints with a single endpoint"

    r = shared.post(f"/rooms/{room['name']}", {"properties": {"sip": None}})
    assert r.status_code == 200
    assert "sip" not in r.json()["config"] and "sip_uri" not in r.json()["config"]
    rooms = {x["name"]: x for x in shared.emu("rooms")}
    assert rooms[room["name"]]["sip_enabled"] is False


def test_digit_only_usernames(shared):
    room = shared.make_room(sip={**SIP_ON, "force_digit_only_username": True})
    uri = room["config"]["sip_uri"]
    assert re.match(r"^sip:\d+@", uri["endpoint"])


def test_expired_rooms_are_treated_as_gone(shared):
    name = room_name()
    shared.make_room(name, exp=int(time.time()) + 1)
    assert shared.get(f"/rooms/{name}").status_code == 200
    time.sleep(1.2)
    assert shared.get(f"/rooms/{name}").status_code == 404
    assert name not in [r["name"] for r in shared.get("/rooms").json()["data"]]
    r = shared.delete(f"/rooms/{name}")
    assert r.status_code == 404 and r.json()["deleted"] is True


def test_pagination(own):
    ids = [own.make_room(f"p{i}")["id"] for i in range(7)]  # p0 oldest ... p6 newest

    def names(total=7, **params):
        r = own.get("/rooms", params=params)
        assert r.status_code == 200, r.text
        assert r.json()["total_count"] == total
        return [x["name"] for x in r.json()["data"]]

    assert names() == [f"p{i}" for i in range(6, -1, -1)], "newest first"
    assert names(limit=3) == ["p6", "p5", "p4"]
    assert names(limit=3, starting_after=ids[4]) == ["p3", "p2", "p1"]
    assert names(limit=3, starting_after=ids[1]) == ["p0"]
    assert names(limit=2, ending_before=ids[2]) == ["p4", "p3"]
    assert names(limit=2, ending_before="OLDEST") == ["p1", "p0"]
    assert names(limit=500) == names(), "limit is capped at 100"
    for params in ({"limit": 0}, {"limit": "many"}, {"starting_after": "nope"}):
        r = own.get("/rooms", params=params)
        assert r.status_code == 400 and r.json()["error"] == "invalid-request-error"

    own.delete("/rooms/p3")
    assert names(6, limit=2, starting_after=ids[3]) == ["p2", "p1"], "a deleted room still works as cursor"


def test_list_limit_is_at_most_100(own):
    for i in range(105):
        own.post("/rooms", {"name": f"bulk{i:03d}"})
    r = own.get("/rooms").json()
    assert r["total_count"] == 105 and len(r["data"]) == 100
    assert r["data"][0]["name"] == "bulk104"
