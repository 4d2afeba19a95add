"""The campaign flow: provision room -> await ready -> dial out to a list of SIP URIs -> collect
results -> disable SIP.

Each step is a task run (`daily_sip.flows.steps`); everything around the steps that keeps the
nothing-left promise (heartbeat, cancel and dead-worker watches, the room lock, cleanup and the
report on every way out) is `supervise` (`daily_sip.flows.supervision.run`).
"""

from __future__ import annotations

from prefect import flow
from prefect.client.schemas.objects import State
from pydantic import Field

from daily_sip.flows.campaign.model import Campaign
from daily_sip.flows.cleanup.crash import clean_up_interrupted_run
from daily_sip.flows.collect.listener import RoomListener
from daily_sip.flows.collect.results import collect_results
from daily_sip.flows.dial.dialer import dial_out
from daily_sip.flows.provision.webhook import ensure_webhook_shared
from daily_sip.flows.report.model import CampaignReport
from daily_sip.flows.report.naming import flow_run_name
from daily_sip.flows.steps import await_ready, clean_up, provision_room
from daily_sip.flows.supervision.run import CampaignRun, supervise
from daily_sip.flows.supervision.storage import RESULT_STORAGE


@flow(
    name="dial-campaign",
    flow_run_name=flow_run_name,
    description="Put a Daily room onto many SIP bridges and report which answered.",
    on_cancellation=[clean_up_interrupted_run],
    on_crashed=[clean_up_interrupted_run],
    validate_parameters=True,
    persist_result=False,  # the report is published as artifacts and returned in the state
    result_storage=RESULT_STORAGE,
)
async def dial_campaign(
    campaign: Campaign,
    # Prefect titles every parameter with its Python name; json_schema_extra is applied last, so
    # the form shows these titles. An empty string means "none": no str / None toggle in the form.
    credentials_block: str = Field(
        default="",
        description="Name of a saved DailyCredentials block (`daily-sip setup` saves `daily`); "
        "empty = DAILY_API_KEY / DAILY_API_URL from the worker's environment.",
        json_schema_extra={"title": "Daily credentials block"},
    ),
    webhook_url: str = Field(
        default="",
        description="Public URL of the webhook receiver; when set, the domain's Daily webhook is "
        "pointed at it first. Empty = leave the webhook as it is.",
        json_schema_extra={"title": "Webhook receiver URL"},
    ),
) -> State[CampaignReport]:
    """Dial every target from one room, collect outcomes from Daily's webhooks, clean up.

    The run ends Completed when the campaign's success rule holds, Failed otherwise; either
    way its result is the CampaignReport, also published as table and markdown artifacts.

    Example:
        ```python
        from daily_sip.flows.campaign.model import Campaign
        from daily_sip.flows.dial_campaign import dial_campaign

        report = await dial_campaign(Campaign(targets=[{"sip_uri": "sip:123@bridge.example.com"}]))
        ```
    """
    run = CampaignRun(campaign, credentials_block)  # report, ledger, event router: nothing touched yet
    async with supervise(run):  # on every way out: clean up, close and publish the report
        run.check_start_window()  # started past the campaign's start window: dial nothing
        creds = await run.prove_credentials()  # one cheap call proves the key and the URL
        if webhook_url:  # refuses, changing nothing, a webhook that feeds another application
            await ensure_webhook_shared(webhook_url, creds)  # checked once a minute per process
        await run.lock_room()  # a borrowed room: one campaign at a time
        async with RoomListener(run.room_name, run.router):  # Daily's events, from before the first call
            room = await provision_room(run)
            await await_ready(run, room.name)
            await dial_out(run, room.name)
            collect_results(run.report, run.router, run.logger)
        await clean_up(run)  # hang up what is up, SIP off, delete the room the run created
    return run.report.final_state(cancelled=run.cancel_asked.is_set())
