"""The shipped deployments of the campaign flow, defined once.

``prefect deploy`` reads ``prefect.yaml``, which is rendered from these definitions
(``daily-sip init`` writes it; a test keeps the shipped copy equal to the rendering), and
``daily-sip serve`` builds the same deployments from them with ``Flow.ato_deployment``. So
the two ways of running deployments cannot drift apart, and nothing here parses ``prefect.yaml``.

Each deployment reads its campaign from a campaign file at deploy (or serve) time, validated by
`steps.campaign_from_file`, except the ad hoc and on-request ones, whose campaign comes with the
run (the UI form, ``--param``, or the triggering event's payload).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from daily_sip.tasks.events import MEETING_STARTED, room_resource_id

from . import FLOW_ENTRYPOINT

SWEEPER_ENTRYPOINT = "daily_sip.flows.sweeper:sweep_ledgers"

CAMPAIGN_STEP = "daily_sip.deployments.steps.campaign_from_file"
WEBHOOK_URL_VARIABLE = "daily_webhook_url"
DEFAULT_BLOCK = "daily"
DEFAULT_POOL = "daily-sip"


@dataclass(frozen=True)
class CampaignDeployment:
    """One deployment of ``dial_campaign``: its triggers, limits and where its campaign comes from."""

    name: str
    description: str
    tags: tuple[str, ...]
    comment: str  # shown above the deployment in prefect.yaml
    campaign_file: str | None = None  # relative to the folder of prefect.yaml
    require_room: bool = False
    schedules: tuple[dict[str, Any], ...] = ()
    triggers: tuple[dict[str, Any], ...] = ()
    concurrency_limit: dict[str, Any] | None = None
    extra_parameters: dict[str, Any] = field(default_factory=dict)
    entrypoint: str = FLOW_ENTRYPOINT
    # False for flows other than dial_campaign (the sweeper): no credentials/webhook parameters.
    campaign_parameters: bool = True

    @property
    def step_id(self) -> str:
        # Not "campaign": Prefect also merges each step's outputs into the template namespace, so
        # the step's own `campaign` output would shadow a step named "campaign".
        return "campaign_file"


DEPLOYMENTS: tuple[CampaignDeployment, ...] = (
    CampaignDeployment(
        name="weekday-standup",
        comment="Scheduled: every weekday at 08:55 Berlin time, the campaign in a campaign file.",
        description="Weekday stand-up bridges, 08:55 Europe/Berlin, Monday to Friday. The campaign "
        "comes from campaigns/weekday-standup.yaml (read and validated by `prefect deploy`).",
        tags=("daily", "sip", "scheduled"),
        campaign_file="campaigns/weekday-standup.yaml",
        schedules=({"cron": "55 8 * * 1-5", "timezone": "Europe/Berlin"},),
        # A run still going (or a manual "Run now") makes the next one wait, not overlap.
        concurrency_limit={"limit": 1, "collision_strategy": "ENQUEUE"},
    ),
    CampaignDeployment(
        name="adhoc",
        comment="Ad hoc: the UI's custom-run form, or prefect deployment run 'dial-campaign/adhoc' "
        "--param campaign='{...}'.",
        description="Ad hoc campaign: fill in the campaign form (Run > Custom run) or pass "
        '--param campaign=\'{"targets": [{"sip_uri": "sip:123@bridge.example.com"}]}\'. '
        "A fresh room per run unless the campaign names one.",
        tags=("daily", "sip", "adhoc"),
    ),
    CampaignDeployment(
        name="on-request",
        comment="Event-triggered: any `daily.campaign.requested` event runs the campaign in its payload:\n"
        "prefect event emit daily.campaign.requested --resource-id daily.campaign.weekly-sync \\\n"
        '  --payload \'{"campaign": {"name": "weekly-sync",\n'
        '             "targets": [{"sip_uri": "sip:..."}]}}\'',
        description="Runs the campaign carried by each `daily.campaign.requested` event (payload key "
        "`campaign`, same schema as the form; resource `daily.campaign.<name>`).",
        tags=("daily", "sip", "event"),
        triggers=(
            {
                "type": "event",
                "name": "daily.campaign.requested -> dial-campaign/on-request",
                "enabled": True,
                "match": {"prefect.resource.id": "daily.campaign.*"},
                "expect": ["daily.campaign.requested"],
                "posture": "Reactive",
                "threshold": 1,
                # Rendered by Prefect when the event arrives; a lone `{{ ... }}` keeps its JSON type.
                "parameters": {"campaign": "{{ event.payload.campaign }}"},
            },
        ),
    ),
    CampaignDeployment(
        name="standup-meeting",
        comment="Event-triggered: when a meeting starts in the campaign's room (Daily's "
        "`meeting.started` webhook,\nas the Prefect event `daily.meeting.started` on "
        "`daily.room.<room>`), dial the bridges into it.",
        description="Dials the stand-up bridges into the `standup` room whenever a meeting starts "
        "there (event daily.meeting.started). Campaign and room: campaigns/standup-meeting.yaml.",
        tags=("daily", "sip", "event"),
        campaign_file="campaigns/standup-meeting.yaml",
        require_room=True,
        triggers=(
            {
                "type": "event",
                "name": f"{MEETING_STARTED} -> dial-campaign/standup-meeting",
                "enabled": True,
                "match": {"prefect.resource.id": room_resource_id("{{ campaign_file.room }}")},
                "expect": [MEETING_STARTED],
                "posture": "Reactive",
                "threshold": 1,
            },
        ),
        # CANCEL_NEW, not ENQUEUE: a second `meeting.started` while the bridges are in (e.g. the
        # one our own dial-out causes when the meeting had just ended) is dropped instead of
        # dialling everyone again afterwards.
        concurrency_limit={"limit": 1, "collision_strategy": "CANCEL_NEW"},
    ),
    CampaignDeployment(
        name="sweep-ledgers",
        comment="Scheduled: every 5 minutes, finish the cleanup of campaign runs that died (kill -9, lost\n"
        "host) or ran out of cleanup retries while Daily was failing (daily_sip.flows.sweeper).",
        description="Finds cleanup ledgers (variables daily_campaign_<run id>) of runs that ended or "
        "stopped sending heartbeats, and hangs up their legs, deletes the rooms they created and "
        "restores the original properties of rooms they borrowed. Never touches a live run's room.",
        tags=("daily", "sip", "sweeper", "scheduled"),
        entrypoint=SWEEPER_ENTRYPOINT,
        campaign_parameters=False,
        schedules=({"cron": "*/5 * * * *", "timezone": "UTC"},),
        # A sweep still going makes the next one skip, not pile up.
        concurrency_limit={"limit": 1, "collision_strategy": "CANCEL_NEW"},
    ),
)


def by_name(names: list[str] | None = None) -> list[CampaignDeployment]:
    """The definitions, all or the named ones (ValueError names any unknown one)."""
    if not names:
        return list(DEPLOYMENTS)
    known = {d.name: d for d in DEPLOYMENTS}
    if missing := [n for n in names if n not in known]:
        raise ValueError(f"no deployment named {', '.join(missing)} (known: {', '.join(known)})")
    return [known[n] for n in names]


def yaml_entry(d: CampaignDeployment, *, block: str = DEFAULT_BLOCK, pool: str = DEFAULT_POOL) -> dict:
    """The deployment as a ``prefect.yaml`` entry (what ``prefect deploy`` reads)."""
    parameters: dict[str, Any] = (
        {
            "credentials_block": block,
            # Empty when the variable does not exist: then runs change nothing at Daily's webhook.
            "webhook_url": "{{ prefect.variables." + WEBHOOK_URL_VARIABLE + " }}",
            **d.extra_parameters,
        }
        if d.campaign_parameters
        else dict(d.extra_parameters)
    )
    entry: dict[str, Any] = {
        "name": d.name,
        "entrypoint": d.entrypoint,
        "description": d.description,
        "tags": list(d.tags),
    }
    if d.campaign_file:
        step: dict[str, Any] = {"id": d.step_id, "path": d.campaign_file}
        if d.require_room:
            step["require_room"] = True
        entry["build"] = [{CAMPAIGN_STEP: step}]
        parameters["campaign"] = "{{ " + d.step_id + ".campaign }}"
    entry["parameters"] = parameters
    if d.schedules:
        entry["schedules"] = [dict(s) for s in d.schedules]
    if d.triggers:
        entry["triggers"] = [dict(t) for t in d.triggers]
    if d.concurrency_limit:
        entry["concurrency_limit"] = dict(d.concurrency_limit)
    entry["enforce_parameter_schema"] = True
    entry["work_pool"] = {"name": pool, "work_queue_name": "default"}
    return entry


HEADER = """\
# Deployments of the dial-campaign flow (daily_sip.flows.dial_campaign) and of the sweeper that
# finishes the cleanup of dead runs (daily_sip.flows.sweeper), for a `process` work pool.
# Rendered from daily_sip.deployments.definitions by `daily-sip init`; edit freely in your copy.
#
# From this folder, once `daily-sip setup` has stored the `{block}` credentials block, the rate
# limits and the `{pool}` work pool:
#
#   prefect deploy --all
#   prefect worker start --pool {pool}
#
# The flow is loaded from the installed `daily-sip-flows` package, so a worker needs the package,
# not this folder (`pull: []`). Campaign paths are relative to this folder.
"""


def render_prefect_yaml(*, block: str = DEFAULT_BLOCK, pool: str = DEFAULT_POOL) -> str:
    """The whole ``prefect.yaml``, with a comment above each deployment."""
    import prefect
    import yaml

    def dump(value: Any) -> str:
        return yaml.safe_dump(value, sort_keys=False, width=100, allow_unicode=True)

    top = {
        "name": "daily-sip-flows",
        "prefect-version": prefect.__version__.split("+")[0],
        "build": None,
        "push": None,
        "pull": [],
    }
    parts = [HEADER.format(block=block, pool=pool), dump(top), "deployments:\n"]
    for d in DEPLOYMENTS:
        comment = "".join(f"  # {line}\n" for line in d.comment.splitlines())
        body = dump([yaml_entry(d, block=block, pool=pool)])
        parts.append("\n" + comment + "".join(f"  {line}\n" for line in body.splitlines()))
    return "".join(parts)
