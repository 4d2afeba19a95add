"""Request validation: typed field checks and the room properties the stand-in accepts.

Every check raises a 400 `invalid-request-error` whose `info` names the field, which is what
Daily answers for a bad body (https://docs.daily.co/reference/rest-api). Room properties follow
Daily's room configuration (https://docs.daily.co/reference/rest-api/rooms/config): the SIP and
dial-out ones (`sip`, `dialout_config`, `dialin`, see
https://docs.daily.co/guides/products/dial-in-dial-out/sip) are checked strictly, the rest only
for their JSON type.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from .errors import invalid


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def check_bool(path: str, v: Any) -> None:
    if not isinstance(v, bool):
        raise invalid(f"'{path}' must be a boolean")


def check_str(path: str, v: Any, max_len: int | None = None) -> None:
    if not isinstance(v, str):
        raise invalid(f"'{path}' must be a string")
    if max_len is not None and len(v) > max_len:
        raise invalid(f"'{path}' must be at most {max_len} characters")


def check_int(path: str, v: Any, lo: int | None = None, hi: int | None = None) -> None:
    if not _is_int(v):
        raise invalid(f"'{path}' must be an integer")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise invalid(f"'{path}' must be between {lo} and {hi}, got {v}")


def check_number(path: str, v: Any, lo: float | None = None) -> None:
    if not _is_number(v) or not math.isfinite(v):
        raise invalid(f"'{path}' must be a finite number")
    if lo is not None and v < lo:
        raise invalid(f"'{path}' must be >= {lo}, got {v}")


def check_object(path: str, v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise invalid(f"'{path}' must be an object")
    return v


def check_keys(path: str, obj: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        where = f" in '{path}'" if path else ""
        raise invalid(
            f"unknown field(s){where}: {', '.join(repr(k) for k in unknown)}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


AUDIO_CODECS = {"OPUS", "G722", "PCMU", "PCMA"}
VIDEO_CODECS = {"H264", "VP8"}


def check_codecs(path: str, v: Any) -> None:
    obj = check_object(path, v)
    check_keys(path, obj, {"audio", "video"})
    for kind, allowed in (("audio", AUDIO_CODECS), ("video", VIDEO_CODECS)):
        if kind not in obj:
            continue
        codecs = obj[kind]
        if not isinstance(codecs, list) or not all(isinstance(c, str) for c in codecs):
            raise invalid(f"'{path}.{kind}' must be a list of strings")
        bad = [c for c in codecs if c not in allowed]
        if bad:
            raise invalid(f"'{path}.{kind}' has unsupported codec(s) {bad}; allowed: {sorted(allowed)}")


def _bool_prop(path: str, v: Any) -> None:
    check_bool(path, v)


def _int_prop(path: str, v: Any) -> None:
    check_int(path, v)


def _num_prop(path: str, v: Any) -> None:
    check_number(path, v)


def _str_prop(path: str, v: Any) -> None:
    check_str(path, v)


def _obj_prop(path: str, v: Any) -> None:
    check_object(path, v)


def _list_prop(path: str, v: Any) -> None:
    if not isinstance(v, list):
        raise invalid(f"'{path}' must be a list")


MAX_NUM_ENDPOINTS = 20
SIP_PROVIDERS = {"daily", "signalwire"}
SIP_REQUIRED = ("sip_mode", "display_name")


def _check_sip(path: str, v: Any) -> None:
    obj = check_object(path, v)
    check_keys(
        path,
        obj,
        {
            "display_name",
            "sip_mode",
            "video",
            "num_endpoints",
            "codecs",
            "provider",
            "force_digit_only_username",
            "dialin_config",
        },
    )
    if "sip_mode" in obj and obj["sip_mode"] != "dial-in":
        raise invalid(f"'{path}.sip_mode' must be \"dial-in\", got {obj['sip_mode']!r}")
    if "display_name" in obj:
        check_str(f"{path}.display_name", obj["display_name"], 200)
    if "video" in obj:
        check_bool(f"{path}.video", obj["video"])
    if "num_endpoints" in obj:
        check_int(f"{path}.num_endpoints", obj["num_endpoints"], 1, MAX_NUM_ENDPOINTS)
    if "codecs" in obj:
        check_codecs(f"{path}.codecs", obj["codecs"])
    if "provider" in obj and obj["provider"] not in SIP_PROVIDERS:
        raise invalid(f"'{path}.provider' must be one of {sorted(SIP_PROVIDERS)}")
    if "force_digit_only_username" in obj:
        check_bool(f"{path}.force_digit_only_username", obj["force_digit_only_username"])
        if obj["force_digit_only_username"] and obj.get("num_endpoints", 1) > 1:
            raise invalid(
                f"'{path}.force_digit_only_username' cannot be used with '{path}.num_endpoints' > 1"
            )
    if "dialin_config" in obj:
        sub = check_object(f"{path}.dialin_config", obj["dialin_config"])
        p = f"{path}.dialin_config"
        check_keys(
            p,
            sub,
            {
                "allow_room_start",
                "dialin_geo",
                "max_idle_timeout_sec",
                "max_idle_timeout_post_conversation_sec",
                "hold_music_enabled",
            },
        )
        for key in ("allow_room_start", "hold_music_enabled"):
            if key in sub:
                check_bool(f"{p}.{key}", sub[key])
        if "dialin_geo" in sub:
            check_str(f"{p}.dialin_geo", sub["dialin_geo"])
        for key in ("max_idle_timeout_sec", "max_idle_timeout_post_conversation_sec"):
            if key in sub:
                check_number(f"{p}.{key}", sub[key], 0)
    # Daily's schema marks both required whenever `sip` is an object
    # (https://docs.daily.co/reference/rest-api/rooms/config); checked after the types so a
    # wrong value is named before a missing one.
    missing = [key for key in SIP_REQUIRED if key not in obj]
    if missing:
        raise invalid(
            f"'{path}' is missing required field(s) {', '.join(repr(k) for k in missing)}; "
            f'send e.g. {{"sip_mode": "dial-in", "display_name": "SIP Participant"}}'
        )


def _check_dialout_config(path: str, v: Any) -> None:
    obj = check_object(path, v)
    check_keys(
        path,
        obj,
        {
            "allow_room_start",
            "dialout_geo",
            "max_idle_timeout_sec",
            "max_idle_timeout_post_conversation_sec",
        },
    )
    if "allow_room_start" in obj:
        check_bool(f"{path}.allow_room_start", obj["allow_room_start"])
    if "dialout_geo" in obj:
        check_str(f"{path}.dialout_geo", obj["dialout_geo"])
    for key in ("max_idle_timeout_sec", "max_idle_timeout_post_conversation_sec"):
        if key in obj:
            check_number(f"{path}.{key}", obj[key], 0)


def _check_dialin(path: str, v: Any) -> None:
    obj = check_object(path, v)
    check_keys(path, obj, {"display_name", "wait_for_meeting_start"})
    if "display_name" in obj:
        check_str(f"{path}.display_name", obj["display_name"])
    if "wait_for_meeting_start" in obj:
        check_bool(f"{path}.wait_for_meeting_start", obj["wait_for_meeting_start"])


def check_privacy(path: str, v: Any) -> None:
    if v not in ("public", "private"):
        raise invalid(f'\'{path}\' must be "public" or "private"')


_BOOL_PROPS = (
    "eject_at_room_exp enable_dialout enable_people_ui enable_pip_ui enable_emoji_reactions "
    "enable_hand_raising enable_prejoin_ui enable_live_captions_ui enable_network_ui "
    "enable_noise_cancellation_ui enable_breakout_rooms enable_knocking enable_screenshare "
    "enable_video_processing_ui enable_chat enable_shared_chat_history enable_advanced_chat "
    "enable_hidden_participants enable_mesh_sfu enable_adaptive_simulcast "
    "enable_multiparty_adaptive_simulcast enforce_unique_user_ids "
    "experimental_optimize_large_calls start_video_off start_audio_off owner_only_broadcast "
    "disable_rtmp_geo_fallback enable_terse_logging enable_transcription_storage "
    "auto_start_transcription"
).split()
_STR_PROPS = (
    "enable_recording lang geo rtmp_geo signaling_impl meeting_join_hook recordings_template"
).split()
_OBJ_PROPS = ("recordings_bucket transcription_bucket permissions auto_transcription_settings").split()

#: Room properties this stand-in accepts, each with its validator. The SIP and dial-out
#: ones are checked strictly; the rest only for their JSON type.
ROOM_PROPERTIES: dict[str, Callable[[str, Any], None]] = {
    # Unix seconds; Daily's pipecat helper sends `time.time() + 3600`, a float
    # (https://docs.daily.co/reference/rest-api/rooms/config documents them as numbers of seconds).
    "nbf": _num_prop,
    "exp": _num_prop,
    "max_participants": lambda p, v: check_int(p, v, 1, 100_000),
    "eject_after_elapsed": lambda p, v: check_int(p, v, 0),
    "sfu_switchover": _num_prop,
    "streaming_endpoints": _list_prop,
    "sip": _check_sip,
    "dialout_config": _check_dialout_config,
    "dialin": _check_dialin,
    **{name: _bool_prop for name in _BOOL_PROPS},
    **{name: _str_prop for name in _STR_PROPS},
    **{name: _obj_prop for name in _OBJ_PROPS},
}

# Room names as Daily allows them (https://docs.daily.co/reference/rest-api/rooms/config); phone
# numbers in E.164 as dialOut/start asks (https://docs.daily.co/reference/rest-api/rooms/dialout/start).
ROOM_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
PHONE_RE = re.compile(r"^\+[1-9]\d{1,14}$")
TONES_RE = re.compile(r"^[0-9A-D*#]{1,20}$")
EXTENSION_RE = re.compile(r"^[0-9*#]{1,20}$")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def validate_properties(props: Any) -> dict[str, Any]:
    """Check a `properties` object; returns it. `None` values mean "unset"."""
    props = check_object("properties", props)
    for name, value in props.items():
        if name == "sip_uri":
            raise invalid("'sip_uri' is read-only: it is set by Daily when 'sip' is configured")
        check = ROOM_PROPERTIES.get(name)
        if check is None:
            raise invalid(f"unknown room property {name!r}")
        if value is None:
            continue
        check(name, value)
    return props
