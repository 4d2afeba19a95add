"""A Prefect worker that runs many campaigns inside its own process.

A ``process`` worker starts a Python process per flow run: at the top of the hour that is
~7 CPU-seconds per campaign (interpreter, Prefect, the engine) before it dials anyone, one
event subscription and one set of API clients per campaign, and two cores cannot start 100 of
those at Daily's one call per second. This worker (work pool type `WORKER_TYPE`) runs each
flow run as an asyncio task in one event loop: the campaigns of a worker share the imports,
the API clients, one Daily event subscription (`flows.listener.SharedStream`), one cancel
poll (`flows.cancel_watch`) and one watch for Prefect's "suspend this run"
(`daily_sip.suspension_watch`). Scale out with more workers, on more machines.

What sharing costs, and what covers it:

- A worker that dies takes its campaigns with it. Their ledgers stop beating, and the sweep
  every worker runs every 20 s (`flows.sweeper.resident_sweep`) hangs up, restores or deletes
  what they had turned on within about 70 s, and marks the runs Crashed (with one worker, the
  `sweep-ledgers` deployment or `daily-sip sweep` does it once it is back).
- SIGTERM / Ctrl-C stops the worker gracefully: it takes no new runs, and every running
  campaign hangs up, cleans up and publishes its report, then ends Crashed ("the worker
  running this campaign was shut down").
- Runs share the worker's environment: a deployment's ``env`` job variable cannot apply to one
  run only, so the worker refuses a run that sets one (use a ``process`` pool for those), and
  it runs only flows installed in its environment (a module-path entrypoint; pull steps are
  not run).

Example::

    daily-sip worker --pool campaigns --limit 20

``--limit`` counts the campaigns that have not yet started their calls (default
`DEFAULT_LIMIT`): one that has started them frees its place, so campaigns that hold their calls
for a whole meeting do not stop the next ones (`flows.supervision.admission`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import signal
import socket
import threading
from functools import partial
from typing import Any

import anyio
from prefect.workers.base import BaseJobConfiguration, BaseVariables, BaseWorker, BaseWorkerResult

WORKER_TYPE = "daily-sip-inprocess"
# Flow runs this worker starts per second at most. Starting a run is its costliest moment (the
# engine, the first API calls); fifty at once froze the shared event loop for seconds, so calls
# left late after their rate-limit permit and Daily answered 429. Daily's call-start rate (1/s
# per account) is the bound anyway: starting campaigns faster only makes them wait in memory.
STARTS_PER_SECOND = 2.0
# Campaigns a worker takes that have not yet started their calls (`flows.supervision.admission`):
# Daily starts ~one dial-out a second, so more of them only wait in memory, each paying Prefect
# writes while it waits. 10 per worker keep Daily's start window busy while the next campaigns
# start (a run's start takes seconds): benchmarks/fleet.py, docs/benchmarks.md.
DEFAULT_LIMIT = 10
# After a place is freed, the next poll waits this long so places freed together share it.
POLL_AFTER_RELEASE_SECONDS = 0.5
# How long a graceful stop waits for the campaigns to clean up and report.
STOP_GRACE_SECONDS = 120.0

logger = logging.getLogger("daily_sip.worker")


class CampaignWorkerResult(BaseWorkerResult):
    """The end of one in-process flow run (``status_code`` 0 when the engine reported a final state)."""


class RunRefused(RuntimeError):
    """A flow run this worker cannot run in its shared process; the message says where to run it."""


class CampaignJobConfiguration(BaseJobConfiguration):
    """Prefect's job configuration, with the environment of Prefect's settings computed once.

    For each run, Prefect's worker serialises every setting into the environment a new process
    would get (~10 % of this worker's CPU at 20 campaigns); here the runs share this process,
    whose settings do not change while it runs.
    """

    @classmethod
    def _base_environment(cls) -> dict[str, str]:
        from prefect.settings import get_current_settings

        settings = get_current_settings()
        if _settings_environment.get("of") is not settings:
            _settings_environment.update(of=settings, env=super()._base_environment())
        return dict(_settings_environment["env"])


_settings_environment: dict[str, Any] = {}


class CampaignWorker(BaseWorker[CampaignJobConfiguration, BaseVariables, CampaignWorkerResult]):
    """Runs flow runs of its work pool as tasks of one event loop (see the module docstring)."""

    type = WORKER_TYPE
    job_configuration = CampaignJobConfiguration
    job_configuration_variables = BaseVariables
    _description = (
        "Runs daily-sip campaigns as tasks inside the worker process: many campaigns "
        "share one process, one event subscription and one cancel poll."
    )
    _display_name = "daily-sip (in-process)"

    def __init__(self, *args: Any, starts_per_second: float = STARTS_PER_SECOND, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._flows: dict[str, Any] = {}
        self._running: dict[str, asyncio.Task] = {}
        self._start_interval = 1.0 / starts_per_second if starts_per_second > 0 else 0.0
        self._next_start = 0.0
        self._start_gate = asyncio.Lock()
        self.stopping = False  # set on SIGTERM: no new runs while the running ones clean up
        self._context: contextvars.Context | None = None
        self._poll_soon: asyncio.Task | None = None

    async def get_and_submit_flow_runs(self) -> list[Any]:
        if self.stopping:
            return []
        return await super().get_and_submit_flow_runs()

    def _place_freed(self, flow_run_id: Any) -> None:
        """A campaign has started its calls: its place goes to the next run now, not at the
        next poll (up to ``PREFECT_WORKER_QUERY_SECONDS`` later, 10 s by default)."""
        self._release_limit_slot(flow_run_id)
        if self._context is not None and (self._poll_soon is None or self._poll_soon.done()):
            # In the worker's own context: a task made in the campaign's would carry its run.
            self._poll_soon = asyncio.get_running_loop().create_task(
                self._poll_after_release(), context=self._context.copy()
            )

    async def _poll_after_release(self) -> None:
        await asyncio.sleep(POLL_AFTER_RELEASE_SECONDS)  # places freed close together: one poll
        try:
            await self.get_and_submit_flow_runs()
        except Exception as exc:  # the regular poll tries again
            logger.debug("poll after a freed place failed: %s", exc)

    async def _wait_for_start_slot(self) -> None:
        async with self._start_gate:
            loop = asyncio.get_running_loop()
            wait = self._next_start - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_start = loop.time() + self._start_interval

    async def _flow_for(self, flow_run: Any) -> Any:
        from prefect.flows import load_flow_from_entrypoint

        if flow_run.deployment_id is None:
            raise RunRefused("the run has no deployment; start it with `daily-sip run` instead")
        deployment = await self.client.read_deployment(flow_run.deployment_id)
        entrypoint = deployment.entrypoint or ""
        module = entrypoint.split(":")[0]
        if not entrypoint or module.endswith(".py") or "/" in module or "\\" in module:
            raise RunRefused(
                f"deployment {deployment.name!r} loads its flow from a file ({entrypoint!r}); this "
                "worker runs only flows installed in its environment, by module path (e.g. "
                "daily_sip.flows.dial_campaign:dial_campaign), and runs no pull steps, so deploy it "
                "that way or to a `process` work pool"
            )
        if entrypoint not in self._flows:
            flow = await asyncio.to_thread(load_flow_from_entrypoint, entrypoint)
            if not flow.isasync or flow.isgenerator:
                raise RunRefused(
                    f"flow {flow.name!r} is not a plain async flow; in a shared event loop "
                    "it would hold up every other run, so deploy it to a `process` pool"
                )
            self._flows[entrypoint] = flow
        return self._flows[entrypoint]

    async def run(
        self,
        flow_run: Any,
        configuration: CampaignJobConfiguration,
        task_status: anyio.abc.TaskStatus[str] | None = None,
    ) -> CampaignWorkerResult:
        from prefect.flow_engine import run_flow

        from daily_sip.flows.supervision.admission import admitted

        # Prefect adds its own settings (this worker's, so already in effect here); anything else
        # the deployment sets cannot apply to one run of a shared process.
        own = sorted(
            k for k, v in configuration.env.items() if not k.startswith("PREFECT_") and os.environ.get(k) != v
        )
        if own:
            raise RunRefused(
                f"the deployment sets environment variables ({', '.join(own)}), which cannot apply to "
                "one run of a shared process; set them in the worker's environment, or use a "
                "`process` work pool"
            )
        if self._context is None:  # the worker's own context (its clients), not a run's
            self._context = contextvars.copy_context()
        flow = await self._flow_for(flow_run)
        await self._wait_for_start_slot()
        flow_run = await self.client.read_flow_run(flow_run.id)  # its state is Submitting by now
        identifier = f"{socket.gethostname()}:{os.getpid()}:{flow_run.id}"
        # run_flow resolves the run's parameters (and defaults) as `prefect flow-run execute` does.
        # The run frees its place in the worker's limit once it has started its calls (or ends).
        with admitted(partial(self._place_freed, flow_run.id)):
            run = asyncio.create_task(
                run_flow(flow, flow_run=flow_run, return_type="state"), name=f"flow-run-{flow_run.id}"
            )
        self._running[str(flow_run.id)] = run
        if task_status is not None:
            task_status.started(identifier)
        try:
            state = await asyncio.shield(run)
        except BaseException:  # the engine records crashes itself; this is what it could not record
            logger.exception("flow run %s ended without a final state", flow_run.id)
            state = None
        finally:
            self._running.pop(str(flow_run.id), None)
        return CampaignWorkerResult(
            identifier=identifier, status_code=0 if state is not None and state.is_final() else 1
        )

    async def kill_infrastructure(
        self, infrastructure_pid: str, configuration: CampaignJobConfiguration, grace_seconds: int = 30
    ) -> None:
        """A run cancelled before it started: stop its task if this worker has it."""
        from prefect.exceptions import InfrastructureNotAvailable, InfrastructureNotFound

        host, _, rest = infrastructure_pid.partition(":")
        pid, _, run_id = rest.partition(":")
        if host != socket.gethostname() or pid != str(os.getpid()):
            raise InfrastructureNotAvailable(f"run {run_id} belongs to another worker ({host}:{pid})")
        run = self._running.get(run_id)
        if run is None:
            raise InfrastructureNotFound(f"run {run_id} is not running in this worker")
        run.cancel()

    def running(self) -> list[asyncio.Task]:
        return list(self._running.values())


async def _serve(
    pool: str, name: str | None, limit: int | None, stop: asyncio.Event, starts_per_second: float
) -> None:
    from prefect.context import SyncClientContext

    worker = CampaignWorker(work_pool_name=pool, name=name, limit=limit, starts_per_second=starts_per_second)
    # One Prefect client for the whole worker: every run's engine, task runs, artifacts and
    # variables find it in the context (`get_client` reuses an entered client of the same loop)
    # instead of opening their own, each with a TLS context and a connection pool of its own.
    # The engine also asks for a synchronous client at each run start (its result store): the
    # same holds for that one. A failing worker loop ends the task group too.
    with SyncClientContext.get_or_create():
        await _serve_with_clients(worker, stop)


async def _serve_with_clients(worker: CampaignWorker, stop: asyncio.Event) -> None:
    from prefect.context import AsyncClientContext

    from daily_sip.flows.supervision.cancel_watch import WORKER_STOPPING, cancel_watch
    from daily_sip.flows.sweeper import resident_sweep
    from daily_sip.suspension_watch import shared_suspension_watch

    say = lambda *a, **_: logger.info(" ".join(map(str, a)))  # noqa: E731
    async with (
        AsyncClientContext.get_or_create(),
        shared_suspension_watch(),
        anyio.create_task_group() as group,
    ):
        group.start_soon(partial(worker.start, printer=say))
        group.start_soon(resident_sweep)  # the campaigns of workers that died, within ~70 s
        await stop.wait()
        worker.stopping = True
        runs = worker.running()
        told = cancel_watch().stop_all(WORKER_STOPPING)
        logger.warning("stopping: %d campaign(s) running here clean up and report (%d told)", len(runs), told)
        if runs:
            await asyncio.wait(runs, timeout=STOP_GRACE_SECONDS)
        group.cancel_scope.cancel()


class _QuietRunLogs(logging.Filter):
    """Drops campaign log records below ``level`` (the Prefect UI keeps every one of them)."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        runs = record.name.startswith(("prefect.flow_runs", "prefect.task_runs"))
        return not runs or record.levelno >= self.level


def print_run_logs_from(level: int) -> None:
    """Print the campaigns' log records on this process's console from ``level`` up.

    Each line printed costs rich's console ~1 ms of CPU; with tens of campaigns in one process
    the lines interleave past reading anyway, while each run's page in the Prefect UI has all
    of them, in order.
    """
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler):
            handler.addFilter(_QuietRunLogs(level))


def serve_worker(
    pool: str,
    *,
    name: str | None = None,
    limit: int | None = None,
    starts_per_second: float = STARTS_PER_SECOND,
) -> None:
    """Run a `CampaignWorker` until SIGTERM or Ctrl-C, then stop it gracefully.

    ``limit``: campaigns at once that have not yet started their calls; None for
    `DEFAULT_LIMIT`, 0 for no limit.

    The event loop runs in a thread of its own: Prefect's flow engine installs a SIGTERM handler
    per run when it runs on the main thread, which in a process shared by many runs would raise
    into whichever run happened to be on the CPU. The main thread keeps the signals.
    """
    import daily_sip.flows.dial_campaign  # noqa: F401  (imported before the heap is frozen)
    from daily_sip.serving import freeze_startup_heap

    freeze_startup_heap()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    failure: list[BaseException] = []

    def run_loop() -> None:
        asyncio.set_event_loop(loop)
        try:
            places = DEFAULT_LIMIT if limit is None else (limit or None)
            loop.run_until_complete(_serve(pool, name, places, stop, starts_per_second))
        except BaseException as exc:
            failure.append(exc)
        finally:
            loop.close()

    def on_signal(signum: int, _frame: Any) -> None:
        logger.warning("received %s: stopping the worker", signal.Signals(signum).name)
        loop.call_soon_threadsafe(stop.set)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    thread = threading.Thread(target=run_loop, name="daily-sip-worker", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.5)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if failure:
        raise failure[0]
