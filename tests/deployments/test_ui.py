"""The Prefect UI shows the campaign form for `dial-campaign/adhoc` (Run > Custom run).

The ad hoc deployment of the shipped deployments is registered on the session Prefect server
(`daily_sip.deployments.serve.build_deployments`, the same code `daily-sip serve` uses; applying it again only
updates it, so `prefect deploy` in another module may come first or after), then headless
Chromium opens its custom-run page in both UIs the server ships: the default (V2, under /v2)
and the classic one (V1). The test waits for the form, asserts each campaign field is there under
its title, adds one target so its SIP URI field shows, and saves a screenshot under
test-artifacts/ (or $UI_SCREENSHOT_DIR) to look at.

Needs Debian's `chromium`; without it the test is skipped locally and fails on CI (CI set).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from daily_sip.flows.campaign.model import AfterAnswer, Campaign, DialIn, Redial, Success, Target

from .ui_browser import Chromium, Page, launch_chromium

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT_NAME = "prefect-ui-adhoc-custom-run.png"
# The run page of a deployment, per UI (the V1 route is its router's deployment/:deploymentId/run,
# V2's is /deployments/deployment/$id/run under the server's /v2 base).
UIS = {
    "v2": ("/v2/deployments/deployment/{id}/run", SCREENSHOT_NAME),
    "v1": ("/deployments/deployment/{id}/run", SCREENSHOT_NAME.replace("prefect-ui-", "prefect-ui-v1-")),
}
FORM_SECTIONS = (Campaign, DialIn, AfterAnswer, Redial, Success)  # the form before any target
API_ERRORS = ("Can't connect to Server API", "Something went wrong")

# Decided before any fixture runs, so a local run without Chromium does not start a server.
needs_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None and not os.environ.get("CI"),
    reason="chromium is not installed (Debian: apt-get install chromium); CI installs it",
)


def _titles(model: type) -> dict[str, str]:
    return {name: field.title or name for name, field in model.model_fields.items()}


def _labels(text: str) -> set[str]:
    """The page's lines, as field labels: both UIs print a label on its own line, "(Optional)" added."""
    return {line.strip().removesuffix(" (Optional)") for line in text.splitlines()}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    if shutil.which("chromium") is None:  # only with CI set (else the test is skipped)
        pytest.fail("chromium is not installed; .ci/run installs it (apt-get install chromium)")
    with launch_chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
async def adhoc_deployment_id(prefect_server) -> str:
    from prefect import get_client

    from daily_sip.deployments.serve import build_deployments

    [deployment] = await build_deployments(names=["adhoc"])
    await deployment.aapply()
    async with get_client() as client:
        return str((await client.read_deployment_by_name("dial-campaign/adhoc")).id)


async def _assert_ui_uses_this_server(prefect_server) -> None:
    """The UI learns its API URL from /ui-settings; the fixture sets PREFECT_UI_API_URL for it."""
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        settings = (await http.get(f"{prefect_server.ui_url}/ui-settings")).json()
    assert settings.get("api_url") == prefect_server.api_url, settings


async def _wait_for_texts(page: Page, url: str, texts: dict[str, int], within: float) -> str:
    """Poll until the page shows each of `texts` at least that many times; its text then.

    Fails at once when the UI shows an API error.

    The forms render in steps (the V1 one fills nested sections in after the first paint), so
    "rendered" means: every expected title is there.
    """
    probe = f"""(() => {{
        const text = document.body ? document.body.innerText : '';
        const error = {json.dumps(API_ERRORS)}.find(e => text.includes(e));
        const missing = Object.entries({json.dumps(texts)}).filter(([t, n]) => text.split(t).length - 1 < n);
        return error ? {{error}} : (missing.length ? null : {{ok: true}});
    }})()"""
    try:
        state = await page.wait_for(probe, within=within)
    except TimeoutError:
        text = await page.text()
        missing = {t: n for t, n in texts.items() if text.count(t) < n}
        pytest.fail(f"{url}: after {within:.0f} s the page still lacks (text: times) {missing}:\n{text}")
    if "error" in state:
        pytest.fail(f"{url}: the UI shows {state['error']!r}:\n{await page.text()}\n{page.console}")
    return await page.text()


@needs_chromium
@pytest.mark.timeout(600)  # a fresh server and a browser on a busy 2-core machine
@pytest.mark.parametrize("ui", list(UIS))
async def test_custom_run_page_shows_the_campaign_form(ui, chromium, prefect_server, adhoc_deployment_id):
    route, screenshot_name = UIS[ui]
    url = prefect_server.ui_url + route.format(id=adhoc_deployment_id)
    # Every field of the form, under the title it has there (nested sections included).
    form_titles = [title for model in FORM_SECTIONS for title in _titles(model).values()]
    target_titles = list(_titles(Target).values())
    shots = Path(os.environ.get("UI_SCREENSHOT_DIR") or REPO / "test-artifacts")
    await _assert_ui_uses_this_server(prefect_server)
    async with chromium.page(width=1400, height=2200) as page:
        await page.navigate(url)
        try:
            text = await _wait_for_texts(page, url, dict.fromkeys([*form_titles, "Submit"], 1), within=90)
            assert {"Targets", "Video", "Audio codecs", "Video codecs"} <= _labels(text)
            assert not set(form_titles) - _labels(text), f"not shown as a field label:\n{text}"

            # The targets list starts empty; one "Add item" adds a target's fields, SIP URI first.
            assert await page.click_text("Add item"), f"{url}: no 'Add item' button\n{text}"
            one_more = {title: text.count(title) + 1 for title in target_titles}
            text = await _wait_for_texts(page, url, one_more, within=30)
            assert text.count("SIP URI") == one_more["SIP URI"]
            assert not set(target_titles) - _labels(text), f"not shown as a field label:\n{text}"
        finally:
            try:
                path = await page.screenshot(shots / screenshot_name)
                print(f"\n[{ui}] screenshot of {url}: {path}")
            except Exception as exc:  # keep the assertion's message, not the screenshot's
                print(f"\n[{ui}] no screenshot: {exc!r}")
        assert not [line for line in page.console if line.startswith("exception")], page.console


def test_form_defaults_are_the_model_defaults():
    """A default the form shows (json_schema_extra, for default_factory fields) is the real one."""
    for model in (*FORM_SECTIONS, Target):
        for name, field in model.model_fields.items():
            assert field.title, f"{model.__name__}.{name} has no title for the form"
            extra = field.json_schema_extra
            # A callable only reshapes the schema (empty_means_none); it shows no default of its own.
            shown = extra.get("default") if isinstance(extra, dict) else None
            if shown is not None:
                assert shown == field.get_default(call_default_factory=True), f"{model.__name__}.{name}"


def demo_like_report():
    from datetime import UTC, datetime, timedelta

    from daily_sip.flows.report.model import CampaignReport, LegEvent, TargetResult

    t0 = datetime.now(UTC)
    plan = [
        ("Webex stand-up", "answered", ["dialling", "ringing", "answered", "on call", "ended"]),
        (
            "PBX room (wrong PIN)",
            "dropped_after_dtmf",
            ["dialling", "ringing", "answered", "DTMF sent", "on call", "ended"],
        ),
        ("Busy line", "busy", ["dialling", "redial scheduled", "dialling", "ended"]),
        ("Nobody there", "no_answer", ["dialling", "ringing", "ended"]),
    ]
    notes = {
        "answered": "answered (hung up after 5 s)",
        "busy": "busy (SIP 486 Busy Here)",
        "no_answer": "no answer (SIP 408 Request Timeout)",
        "dropped_after_dtmf": "dropped after dtmf (far end hung up 3.0 s after the last tone; "
        "check meeting ID / passcode)",
    }
    targets, timeline = [], []
    for i, (name, status, phases) in enumerate(plan):
        targets.append(
            TargetResult(index=i, sip_uri=f"sip:{i}@pbx.example.com", display_name=name, status=status)
        )
        timeline.append(
            [
                LegEvent(
                    at=t0 + timedelta(seconds=1 + i + 2 * k),
                    phase=p,
                    note=notes[status] if p == "ended" else "",
                )
                for k, p in enumerate(phases)
            ]
        )
    return CampaignReport(
        campaign="ui-timeline",
        started_at=t0,
        finished_at=t0 + timedelta(seconds=20),
        targets=targets,
        required=1,
        timeline=timeline,
    )


@needs_chromium
@pytest.mark.timeout(600)
async def test_the_timeline_artifact_reads_in_the_prefect_ui_without_scrolling(chromium, prefect_server):
    # The operator looks at the run's artifacts in the Prefect UI: lanes and outcomes must be in view there.
    from prefect.artifacts import acreate_markdown_artifact

    from daily_sip.flows.report.timeline import timeline_markdown

    report = demo_like_report()
    artifact_id = await acreate_markdown_artifact(
        markdown=timeline_markdown(report),
        key="ui-timeline-timeline",
        description="ui-timeline: one lane per bridge",
    )
    url = f"{prefect_server.ui_url}/v2/artifacts/artifact/{artifact_id}"
    shots = Path(os.environ.get("UI_SCREENSHOT_DIR") or REPO / "test-artifacts")
    async with chromium.page(width=1600, height=900) as page:
        await page.navigate(url)
        try:
            lanes = {t.display_name: 1 for t in report.targets}
            text = await _wait_for_texts(page, url, {"what happened when": 1, **lanes}, within=90)
            lane = {line.split("|")[0].strip(): line for line in text.splitlines() if "|" in line}
            assert "█#█" in lane["PBX room (wrong PIN)"] and "↻" in lane["Busy line"], text
            assert "| busy" in text and "| dropped after dtmf" in text and "| no answer" in text, text
            # Every lane, its outcome included, is in view: the code block does not scroll sideways.
            overflow = await page.evaluate(
                "Array.from(document.querySelectorAll('pre')).map(p => p.scrollWidth - p.clientWidth)"
            )
            assert overflow and max(overflow) <= 0, overflow
        finally:
            with contextlib.suppress(Exception):
                print(f"\nscreenshot of {url}: {await page.screenshot(shots / 'prefect-ui-timeline.png')}")


RUN_SHOTS = {"graph": "prefect-ui-run-graph.png", "artifacts": "prefect-ui-run-artifacts.png"}
STEP_NAMES = ("provision room", "await ready", "clean up")


@needs_chromium
@pytest.mark.timeout(600)
async def test_the_demo_run_page_shows_its_steps_five_cards_and_tables_that_fit(chromium, prefect_server):
    # The demo campaign's run as a Prefect user opens it: the steps in the graph and the task runs
    # list, at most five artifact cards, and every table readable without scrolling at 1,400 px.
    import yaml

    from daily_sip.deployments import CAMPAIGNS_DIR
    from daily_sip.flows.campaign.model import Campaign
    from daily_sip.flows.dial_campaign import dial_campaign
    from tests.flows.conftest import start_stack, stop_stack

    campaign = Campaign.model_validate(yaml.safe_load((CAMPAIGNS_DIR / "demo.yaml").read_text()))
    stack = start_stack(prefect_server.api_url, ring_timeout=3, hangup_after=1)
    try:
        state = await dial_campaign(campaign=campaign, webhook_url=stack.webhook_url, return_state=True)
    finally:
        stop_stack(stack)
    run_id = state.state_details.flow_run_id
    labels = [t.display_name for t in campaign.targets]
    shots = Path(os.environ.get("UI_SCREENSHOT_DIR") or REPO / "test-artifacts")
    url = f"{prefect_server.ui_url}/v2/runs/flow-run/{run_id}"
    async with chromium.page(width=1400, height=1000) as page:
        await page.navigate(f"{url}?tab=TaskRuns")
        try:
            text = await _wait_for_texts(page, url, {name: 1 for name in STEP_NAMES}, within=90)
            for label in labels:
                assert f"dial {label} #1" in text, f"no task run for {label}:\n{text}"
            assert "did not generate any task" not in text
        finally:
            with contextlib.suppress(Exception):
                await page.navigate(url)
                await asyncio.sleep(4)  # the graph draws itself after the page loads
                print(f"\nscreenshot of {url}: {await page.screenshot(shots / RUN_SHOTS['graph'])}")
        await page.navigate(f"{url}?tab=Artifacts")
        try:
            text = await _wait_for_texts(page, url, {"demo-bridges-board": 1}, within=60)
            cards = [
                k
                for k in ("board", "results", "summary", "timeline", "progress")
                if f"demo-bridges-{k}" in text
            ]
            assert len(cards) == 5 and text.count("demo-bridges-") == 5, text
        finally:
            with contextlib.suppress(Exception):
                print(f"\nscreenshot of {url}: {await page.screenshot(shots / RUN_SHOTS['artifacts'])}")
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    async with chromium.page(width=1400, height=1000) as page:
        for artifact in (a for a in artifacts if a.type in ("table", "markdown")):
            art_url = f"{prefect_server.ui_url}/v2/artifacts/artifact/{artifact.id}"
            await page.navigate(art_url)
            await page.wait_for("document.querySelectorAll('table, pre, p').length > 0", within=60)
            await asyncio.sleep(1)
            overflow = await page.evaluate(
                "Array.from(document.querySelectorAll('table, pre')).map(t => t.scrollWidth - "
                "t.parentElement.clientWidth)"
            )
            assert not overflow or max(overflow) <= 0, f"{artifact.key} is wider than its column: {overflow}"
