"""The ``dial_campaign`` flow and its parts.

* `campaign`: the campaign model (the flow's parameter, also read from YAML/JSON files);
* `bridges`: bridge profiles (zoom, webex, teams, pbx, generic): SIP URI and DTMF script from a
  meeting ID and passcode, with the waits around the script;
* `dtmf`: DTMF scripts with pauses, cut into Daily's ``sendDTMF`` calls of at most 20 tones;
* `provision`: create or borrow the room, SIP on, wait until the dial-in endpoints are listed;
* `legs`: the dialler, one dial-out leg per attempt, followed through Daily's webhooks;
* `attempts`: one dial per attempt (a lost start is resolved, never redialled) and hang-ups
  that keep the leg's slot until Daily confirms the end;
* `listener`: Daily events from Prefect (one live subscription per process + history), routed per leg;
* `cancel_watch`: one poll per process that tells its campaigns about "Cancel" in the UI;
* `report`: per-target outcomes and the campaign report;
* `publish`: the report as Prefect artifacts;
* `cleanup`: the ledger, the process's heartbeat, and the cleanup that turns off whatever the
  run turned on, retrying through Daily errors;
* `sweeper`: the ``sweep-ledgers`` flow that finishes the cleanup of runs that died;
* `room_lock`: one campaign at a time per borrowed room (a lease in a Prefect Variable);
* `dial_campaign`: the flow itself, the outline of all of the above.
"""
