"""Deployments of the campaign flow, and the commands that prepare a Prefect server for them.

* `definitions`: the one definition of the shipped deployments (scheduled, ad hoc, two
  event-triggered); ``prefect.yaml`` is rendered from it and ``daily-sip serve`` serves it;
* ``prefect.yaml`` and ``campaigns/``: shipped as package data, and written into your own
  repository by ``daily-sip init``;
* `steps`: the deploy-time step ``prefect.yaml`` calls to read and validate a campaign file;
* `setup`: ``daily-sip setup``, everything the deployments need on a Prefect server;
* `serve`: ``daily-sip serve``, the same deployments without a work pool;
* `starter`: ``daily-sip init``, a starter deployments folder for your repository.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PREFECT_FILE = PACKAGE_DIR / "prefect.yaml"
CAMPAIGNS_DIR = PACKAGE_DIR / "campaigns"
FLOW_ENTRYPOINT = "daily_sip.flows.dial_campaign:dial_campaign"
