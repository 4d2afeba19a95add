"""The ``dial_campaign`` flow and its parts, one sub-package per step of its sentence.

*provision room → await ready → dial out to a list of SIP URIs → collect results → disable SIP*

* `dial_campaign`: the flow itself (entrypoint ``daily_sip.flows.dial_campaign:dial_campaign``);
* `sweeper`: the ``sweep-ledgers`` flow that finishes the cleanup of runs that died
  (entrypoint ``daily_sip.flows.sweeper:sweep_ledgers``);
* `steps`: the steps as Prefect task runs (``provision room``, ``await ready``,
  ``dial <bridge> #<attempt>``, ``clean up``);
* `campaign`: the input: targets, bridge profiles (zoom, webex, teams, pbx), DTMF scripts;
* `provision`: prove the key (`preflight`), create or borrow the room with SIP on and wait until
  its dial-in endpoints are listed (`room`), one campaign per borrowed room (`room_lock`);
* `dial`: the dialler, one leg per attempt (`dialer`), the ring-timeout verdict (`ring`), a start
  never guessed and a hang-up that waits for Daily (`attempts`), what to say when no event came
  back (`silence`);
* `collect`: Daily's webhooks as Prefect events, signature-checked (`verify`) and routed per leg
  (`listener`), and what they say beyond each leg (`results`);
* `report`: the per-target outcomes and verdict (`model`), the live board, the artifacts;
* `cleanup`: the ledger, heartbeats, the cleanup actions and the hook for runs that crashed;
* `supervision`: one run's state and `supervise` (`run`), cancel watches, and what a process's
  campaigns share.
"""
