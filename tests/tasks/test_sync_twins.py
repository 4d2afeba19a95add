"""Every task has an async form (``aname``) and a blocking twin (``name``) for sync flows."""

from __future__ import annotations

import inspect

import pytest
from prefect import Task, flow

from daily_sip.tasks import dialout, presence, rooms, sip, transfers, webhooks
from daily_sip.tasks.credentials import DailyCredentials
from daily_sip.tasks.models import Room

MODULES = (rooms, sip, dialout, presence, transfers, webhooks)


def _pairs() -> list[tuple[str, Task, Task]]:
    pairs = []
    for module in MODULES:
        for name, value in vars(module).items():
            if isinstance(value, Task) and name.startswith("a") and name[1:] in vars(module):
                pairs.append((f"{module.__name__}.{name[1:]}", value, getattr(module, name[1:])))
    return pairs


def test_every_async_task_has_a_sync_twin_with_the_same_name_signature_and_retries():
    pairs = _pairs()
    assert len(pairs) == 20
    for label, atask, twin in pairs:
        assert atask.isasync and not twin.isasync, label
        assert atask.name == twin.name, label
        assert inspect.signature(atask.fn) == inspect.signature(twin.fn), label
        assert twin.retries == atask.retries == 5 and twin.retry_condition_fn is atask.retry_condition_fn
        assert "Example" in (atask.fn.__doc__ or "") and "Example" in (twin.fn.__doc__ or ""), label


@pytest.mark.usefixtures("prefect_server")
def test_sync_flow_gets_results_not_coroutines(emulator, monkeypatch):
    monkeypatch.setenv("DAILY_RATE_LIMIT_SCALE", "0")
    creds = DailyCredentials(api_key=emulator.api_key, api_url=emulator.base_url)

    @flow
    def sync_flow() -> tuple[Room, Room, bool]:
        created = rooms.create_room(properties={"enable_dialout": True}, credentials=creds)
        enabled = sip.enable_sip(
            created.name, {"display_name": "Sync", "sip_mode": "dial-in"}, credentials=creds
        )
        gone = rooms.delete_room(created.name, credentials=creds)
        return created, enabled, gone.deleted

    created, enabled, deleted = sync_flow()
    assert isinstance(created, Room) and isinstance(enabled, Room)
    assert enabled.sip_enabled and deleted
