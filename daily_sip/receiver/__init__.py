"""The webhook receiver: Daily's signed webhooks in, acknowledged Prefect events out.

* Daily's HMAC signature and the timestamp check are `daily_sip.tasks.signature` (the flows
  verify relayed events with it too; `signing` re-exports it);
* `events`: the event contract, a Daily envelope as a Prefect event;
* `emitter`: the acknowledged write of an event to the Prefect API;
* `app`: the ASGI app (`create_app`), de-duplication and the request handling order;
* `relay`: forwarding every delivery to the webhook the receiver took over, re-signed, durably;
* `server`: binding, serving, and the ``daily-sip receiver`` command.
"""

from daily_sip.tasks.signature import sign

from .app import WebhookReceiver, create_app
from .emitter import EmitError, PrefectEventsEmitter
from .server import receiver, serve

__all__ = ["EmitError", "PrefectEventsEmitter", "WebhookReceiver", "create_app", "receiver", "serve", "sign"]
