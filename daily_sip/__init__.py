"""daily-sip-flows: Prefect tasks and flows for Daily's SIP dial-in / dial-out REST API.

Where things are (the import package is ``daily_sip``; three of its subpackages live in the
repository's top-level folders):

* ``daily_sip.tasks`` (``tasks/``): the async client, the models, and one Prefect task per Daily
  operation, each as an async task (``a``-prefixed) and a sync twin, plus the credentials Block;
* ``daily_sip.flows`` (``flows/``): the ``dial_campaign`` flow and its parts;
* ``daily_sip.deployments`` (``deployments/``): ``prefect.yaml``, example campaigns, and the
  ``setup``, ``serve`` and ``init`` commands that prepare a Prefect server for them;
* ``daily_sip.receiver``: the webhook receiver (Daily's signed webhooks in, Prefect events out);
* ``daily_sip.standin``: the offline Daily stand-in used by the demo and the tests;
* ``daily_sip.cli`` and ``daily_sip.local_stack``: the ``daily-sip`` command and the local
  processes it starts for ``demo``.
"""

__version__ = "0.2.0"
