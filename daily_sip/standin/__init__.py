"""The offline Daily stand-in: a local imitation of the parts of Daily's REST API
(https://docs.daily.co/reference/rest-api) this project uses, with webhooks, rate limits and
injectable faults. Run it with `python -m daily_sip.standin`; README.md describes its behaviour.

Layout, moto-style (state per area, apart from the HTTP layer):

* HTTP: ``server`` (app and process), ``responses`` (routes), ``ratelimit``, ``config``, ``cli``;
* state and behaviour: ``backend`` (the facade the routes call), ``rooms``, ``presence``,
  ``dialout`` (call legs), ``dialin`` (simulated callers), ``webhooks`` (registration),
  ``delivery`` (sending webhooks), ``events``;
* shared pieces: ``clock``, ``errors``, ``validation``, ``sip_uri``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import Backend
    from .clock import FakeClock, ManualScheduler
    from .config import EmulatorConfig
    from .errors import ApiError
    from .server import build_app, run

__all__ = ["ApiError", "Backend", "EmulatorConfig", "FakeClock", "ManualScheduler", "build_app", "run"]

_HOMES = {
    "ApiError": ".errors",
    "Backend": ".backend",
    "EmulatorConfig": ".config",
    "FakeClock": ".clock",
    "ManualScheduler": ".clock",
    "build_app": ".server",
    "run": ".server",
}


def __getattr__(name: str) -> Any:
    # Loaded on first use: `daily-sip` imports this package for its CLI and must not pay for
    # Starlette and the backend on every start.
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value
