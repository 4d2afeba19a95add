"""The result storage the flows name so that Prefect does not look one up at every run start.

The flows persist no results (the report is published as artifacts and returned in the final
state), but a flow that names no result storage makes Prefect's engine ask the API for the
server's default storage when each run starts, twice, each time through a new synchronous API
client (a TLS context and a connection of its own): ~60 ms of CPU per run in the process that
runs it, and two requests to the Prefect server. Naming Prefect's own local default costs none.

Example:
    ```python
    from prefect import flow

    from daily_sip.flows.supervision.storage import RESULT_STORAGE

    @flow(persist_result=False, result_storage=RESULT_STORAGE)
    async def my_flow() -> None: ...
    ```
"""

from __future__ import annotations

from pathlib import Path

from prefect.settings import get_current_settings

RESULT_STORAGE = Path(get_current_settings().results.local_storage_path)
