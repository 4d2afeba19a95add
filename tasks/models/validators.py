"""Checks shared by every request model. Each error says which rule failed and how to fix it."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Literal
from urllib.parse import parse_qsl, quote

from pydantic import AfterValidator, BeforeValidator, Field

AudioCodec = Literal["OPUS", "G722", "PCMU", "PCMA"]
VideoCodec = Literal["H264", "VP8"]
AUDIO_CODECS: tuple[str, ...] = ("OPUS", "G722", "PCMU", "PCMA")
VIDEO_CODECS: tuple[str, ...] = ("H264", "VP8")

# Daily documents no maximum; real SIP URIs are far shorter. A generous cap still catches pasted junk.
MAX_SIP_URI_LENGTH = 512
# Daily documents no maximum for display names either; 128 keeps room tiles readable.
MAX_DISPLAY_NAME_LENGTH = 128
MAX_USER_ID_LENGTH = 36  # documented by daily-js
MAX_DTMF_TONES = 20
ROOM_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
DTMF_RE = re.compile(r"^[0-9A-D*#]+$")
_HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


# Zero-width non-joiner / joiner: format characters, yet part of correct text (Persian spelling,
# emoji sequences such as 👨‍💻), so names may hold them.
_TEXT_JOINERS = frozenset("\u200c\u200d")


def _has_control(value: str, allowed: frozenset[str] = frozenset()) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch not in allowed for ch in value)


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def check_sip_uri(value: str) -> str:
    """A dial-out target: ``sip:user@host[;params][?X-Header=value&...]``."""
    if not isinstance(value, str):
        raise ValueError("must be a string such as 'sip:1234@bridge.example.com'")
    if len(value) > MAX_SIP_URI_LENGTH:
        raise ValueError(f"is {len(value)} characters long; at most {MAX_SIP_URI_LENGTH} allowed")
    if value[:4].lower() != "sip:":
        raise ValueError("must start with 'sip:' (e.g. 'sip:1234@bridge.example.com')")
    value = "sip:" + value[4:]  # the scheme is case-insensitive (RFC 3261 19.1.1); write it one way
    if any(ch.isspace() for ch in value) or _has_control(value):
        raise ValueError("contains spaces or control characters; percent-encode them (%20)")
    rest = value[4:]
    address, _, query = rest.partition("?")
    host = address.split(";", 1)[0].rpartition("@")[2]
    if not host or host.startswith((":", ".")):
        raise ValueError("has no host; write it as 'sip:user@host'")
    if "@" in address.split(";", 1)[0] and not address.split("@", 1)[0]:
        raise ValueError("has an empty user part before '@'")
    if query:
        check_sip_headers(dict(parse_qsl(query, keep_blank_values=True)), query_text=query)
    return value


def check_sip_headers(headers: dict[str, str], *, query_text: str | None = None) -> dict[str, str]:
    """SIP headers Daily adds to the INVITE: only custom ``X-`` headers are allowed."""
    if query_text is not None:
        for part in query_text.split("&"):
            if "=" not in part:
                raise ValueError(f"header parameter {part!r} needs a value: 'X-Name=value'")
    for name, val in headers.items():
        if not name.lower().startswith("x-") or len(name) < 3:
            raise ValueError(
                f"header {name!r} is not allowed; Daily only passes custom headers named 'X-...'"
            )
        if not _HEADER_NAME_RE.match(name):
            raise ValueError(f"header name {name!r} has characters not allowed in a SIP header")
        if _has_control(str(val)):
            raise ValueError(f"header {name!r} has control characters in its value")
    return headers


def check_display_name(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or blank")
    if len(value) > MAX_DISPLAY_NAME_LENGTH:
        raise ValueError(f"is {len(value)} characters long; at most {MAX_DISPLAY_NAME_LENGTH}")
    if _has_control(value, _TEXT_JOINERS):
        raise ValueError(
            "contains control characters (newline, tab, ESC, bidi override, ...); "
            "write it on one line without them"
        )
    return value


def check_user_id(value: str) -> str:
    if len(value) > MAX_USER_ID_LENGTH:
        raise ValueError(f"is {len(value)} characters long; Daily allows at most 36")
    if not value or _has_control(value):
        raise ValueError("must be 1-36 printable characters")
    return value


def check_dtmf(value: str) -> str:
    if not value:
        raise ValueError("must hold at least one tone (0-9, A-D, *, #)")
    if len(value) > MAX_DTMF_TONES:
        raise ValueError(f"has {len(value)} tones; Daily sends at most {MAX_DTMF_TONES} per call")
    if not DTMF_RE.match(value):
        bad = sorted({ch for ch in value if not DTMF_RE.match(ch)})
        raise ValueError(f"has invalid tones {bad}; allowed are 0-9, A-D, * and #")
    return value


_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_EXTENSION_RE = re.compile(r"^[0-9*#]{1,20}$")


def check_caller_id(value: str) -> str:
    """``callerId`` is the ``id`` (a UUID) of a number bought on Daily, never the number itself
    (https://docs.daily.co/reference/rest-api/rooms/dialout/start)."""
    if value.startswith("+") or value.replace("-", "").replace(" ", "").isdigit():
        raise ValueError(
            "is a phone number; Daily wants the id of a purchased number "
            "(GET /purchased-phone-numbers, field 'id'), e.g. '0a1b2c3d-...'"
        )
    if not _UUID_RE.match(value):
        raise ValueError(
            "must be the id (a UUID) of a number purchased on Daily (GET /purchased-phone-numbers)"
        )
    return value


def check_extension(value: str) -> str:
    """Digits dialled after the number answers: 0-9, * and #, at most 20
    (https://docs.daily.co/reference/rest-api/rooms/dialout/start); pauses (w/W) are not Daily's,
    use ``waitBeforeExtensionDialSec`` instead."""
    if not _EXTENSION_RE.match(value):
        raise ValueError(
            "must be 1-20 characters from 0-9 * # (no pauses such as 'w': "
            "set waitBeforeExtensionDialSec instead)"
        )
    return value


def check_room_name(value: str) -> str:
    if not ROOM_NAME_RE.match(value):
        raise ValueError("must be 1-128 characters of A-Z, a-z, 0-9, '-' or '_' (Daily's room-name rule)")
    return value


def check_unique(values: list) -> list:
    if len(set(values)) != len(values):
        raise ValueError("lists a codec twice; give each codec once, in order of preference")
    if not values:
        raise ValueError("must name at least one codec, or be left out")
    return values


SipUriStr = Annotated[str, AfterValidator(check_sip_uri)]
DisplayName = Annotated[str, AfterValidator(check_display_name)]
UserId = Annotated[str, AfterValidator(check_user_id)]
DtmfTones = Annotated[str, BeforeValidator(_upper), AfterValidator(check_dtmf)]
RoomName = Annotated[str, AfterValidator(check_room_name)]
CallerId = Annotated[str, AfterValidator(check_caller_id)]
Extension = Annotated[str, AfterValidator(check_extension)]
AudioCodecList = Annotated[list[Annotated[AudioCodec, BeforeValidator(_upper)]], AfterValidator(check_unique)]
VideoCodecList = Annotated[list[Annotated[VideoCodec, BeforeValidator(_upper)]], AfterValidator(check_unique)]
DigitDurationMs = Annotated[int, Field(ge=50, le=2000)]


def encode_uri_component(value: str) -> str:
    """Percent-encode like JavaScript's ``encodeURIComponent`` (UTF-8, unicode included)."""
    return quote(value, safe="-_.!~*'()")


def sip_uri_with_headers(sip_uri: str, headers: dict[str, str] | None) -> str:
    """Append custom ``X-`` headers as URI parameters, the way Daily carries them into the INVITE.

    >>> sip_uri_with_headers("sip:123@bridge.example.com", {"X-Campaign": "monday 9"})
    'sip:123@bridge.example.com?X-Campaign=monday%209'
    """
    if not headers:
        return sip_uri
    check_sip_headers(headers)
    query = "&".join(f"{name}={encode_uri_component(str(v))}" for name, v in headers.items())
    sep = "&" if "?" in sip_uri else "?"
    return check_sip_uri(f"{sip_uri}{sep}{query}")


def normalize_sip_endpoint(endpoint: str) -> str:
    """Daily shows ``sip_uri.endpoint`` both with and without the ``sip:`` scheme; always add it."""
    return endpoint if endpoint.startswith(("sip:", "sips:")) else f"sip:{endpoint}"


def dialin_uri(endpoint: str, display_name: str | None = None) -> str:
    """The SIP URI a caller dials to join with a name of its own (``x-daily_display_name``).

    >>> dialin_uri("abc.0@standin.sip.daily.co", "Zürich bridge")
    'sip:abc.0@standin.sip.daily.co?x-daily_display_name=Z%C3%BCrich%20bridge'
    """
    uri = normalize_sip_endpoint(endpoint)
    if display_name is None:
        return uri
    check_display_name(display_name)
    sep = "&" if "?" in uri else "?"
    return f"{uri}{sep}x-daily_display_name={encode_uri_component(display_name)}"
