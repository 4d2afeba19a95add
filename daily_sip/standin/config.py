"""Every knob of the stand-in, loadable from CLI flags and/or a JSON/YAML file."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

DEV_API_KEY = "daily-standin-dev-key"

_SHARES = (
    "fault_5xx",
    "fault_drop",
    "fault_duplicate",
    "fault_reorder",
    "fault_lost_response",
)
_NON_NEGATIVE = (
    "rate_limit_scale",
    "ring_timeout",
    "hangup_after",
    "ivr_timeout",
    "ivr_reject_delay",
    "connect_delay",
    "answer_delay",
    "webhook_timeout",
    "webhook_retry_base",
    "fault_latency",
    "presence_lag",
)


@dataclass
class EmulatorConfig:
    """Settings of one stand-in process.

    Durations are seconds, `fault_*` shares are probabilities in 0..1 drawn from an RNG
    seeded with `seed`, and `rate_limit_scale` multiplies Daily's published allowances
    (0 turns rate limiting off).
    """

    host: str = "127.0.0.1"
    port: int = 8787
    api_key: str = DEV_API_KEY
    domain_name: str = "standin"
    rate_limit_scale: float = 1.0
    retry_after: bool = False
    ring_timeout: float = 30.0
    hangup_after: float = 5.0
    ivr_timeout: float = 15.0
    ivr_reject_delay: float = 3.0
    connect_delay: float = 0.5
    answer_delay: float = 1.0
    session_limit: int = 5
    webhook_timeout: float = 3.0
    webhook_retry_base: float = 1.0
    fault_5xx: float = 0.0
    fault_latency: float = 0.0
    fault_drop: float = 0.0
    fault_duplicate: float = 0.0
    fault_reorder: float = 0.0
    fault_lost_response: float = 0.0
    seed: int = 0
    enforce_idle_default: bool = True
    participant_events: bool = True
    presence_lag: float = 15.0
    presence_ringing: bool = True
    telephony_profile: str = "sip-code"
    dialout_allowed: bool = True
    sip_mode: str = "scripted"
    sip_bind: str = "127.0.0.1:5070"
    log_level: str = "warning"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first setting that makes no sense."""
        for name in _SHARES:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a share between 0 and 1, got {value}")
        for name in _NON_NEGATIVE:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.session_limit < 1:
            raise ValueError(f"session_limit must be >= 1, got {self.session_limit}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
        from .telephony import load_profile  # late: telephony.py is a leaf, config is imported first

        load_profile(self.telephony_profile)  # ValueError names the setting and what is wrong
        if not self.api_key:
            raise ValueError("api_key must not be empty")
        if self.sip_mode not in ("scripted", "real"):
            raise ValueError(f"sip_mode must be scripted or real, got {self.sip_mode!r}")
        from .sip_real import split_bind

        split_bind(self.sip_bind)

    def public_dict(self) -> dict[str, Any]:
        """Settings as shown by introspection (the key is masked)."""
        data = dataclasses.asdict(self)
        data["api_key"] = self.api_key[:4] + "…" if len(self.api_key) > 4 else "…"
        return data

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {f.name: f.default for f in fields(cls)}

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> EmulatorConfig:
        """Build from a mapping whose keys may be snake_case or kebab-case."""
        known = cls.field_names()
        clean: dict[str, Any] = {}
        for key, value in data.items():
            name = str(key).replace("-", "_")
            if name not in known:
                raise ValueError(f"unknown setting {key!r}; known: {', '.join(sorted(known))}")
            clean[name] = value
        return cls(**_coerce(clean))

    @classmethod
    def load(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> EmulatorConfig:
        """Read a JSON or YAML file, then apply `overrides` on top of it."""
        data = load_file(path)
        data = {str(k).replace("-", "_"): v for k, v in data.items()}
        data.update(overrides or {})
        return cls.from_mapping(data)


def load_file(path: str | Path) -> dict[str, Any]:
    """Parse a settings file: JSON if it parses as JSON, else YAML."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        import yaml  # only needed for YAML files; keeps start-up lean otherwise

        data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    """Cast file values to the field types so `"0.5"` in YAML works like 0.5."""
    types = {f.name: f.type for f in fields(EmulatorConfig)}
    out: dict[str, Any] = {}
    for name, value in values.items():
        kind = types[name]
        if kind == "float":
            out[name] = float(value)
        elif kind == "int":
            out[name] = int(value)
        elif kind == "bool":
            out[name] = (
                value
                if isinstance(value, bool)
                else str(value).lower()
                in {
                    "1",
                    "true",
                    "yes",
                    "on",
                }
            )
        else:
            out[name] = str(value)
    return out
