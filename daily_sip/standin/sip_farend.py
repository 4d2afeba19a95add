"""An IVR far end on real SIP: answers, collects RFC 4733 digits, checks a PIN, hangs up on a wrong one.

A test double for bridges that want a PIN (SIPp cannot read telephone-events), built on the same
PJSIP stack as ``--sip-mode real``. Every call rings `--ring` seconds, is answered, and each digit
it hears (the start of an RFC 4733 event) is written as a JSON line to `--out` with its time; a
``#`` ends an entry, which is accepted (the call stays up until the caller hangs up) or rejected
(the IVR hangs up `--reject-delay` seconds later). The first stdout line is ``ready`` once it
listens.

Example::

    python -m daily_sip.standin.sip_farend --bind 127.0.0.1:5090 --pin 1234 --out ivr.jsonl
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .sip_real import SipStack, SipUnavailable, connect_audio


class Ivr:
    """Answers every call on `stack`; writes what each call hears to `out`."""

    def __init__(self, stack: SipStack, pin: str, out: Path, ring: float, reject_delay: float) -> None:
        self.stack = stack
        self.pin = pin
        self.out = out
        self.ring = ring
        self.reject_delay = reject_delay
        self._lock = threading.Lock()

    def record(self, **fields: Any) -> None:
        line = json.dumps({**fields, "t": time.time()})
        with self._lock, self.out.open("a") as f:
            f.write(line + "\n")

    def incoming(self, prm: Any) -> None:
        call = _ivr_call_class(self.stack.pj)(self, prm.callId)
        self.stack.objects.append(call)
        self.record(event="incoming")
        op = self.stack.pj.CallOpParam()
        op.statusCode = self.stack.pj.StatusCode(180)
        call.answer(op)
        self.later(self.ring, lambda: self._answer(call))

    def later(self, seconds: float, fn: Any) -> None:
        timer = threading.Timer(seconds, lambda: self.stack.run(fn))
        timer.daemon = True
        timer.start()

    def _answer(self, call: Any) -> None:
        if call.gone:
            return
        op = self.stack.pj.CallOpParam()
        op.statusCode = self.stack.pj.StatusCode(200)
        call.answer(op)

    def _hangup(self, call: Any) -> None:
        if not call.gone:
            call.hangup(self.stack.pj.CallOpParam(True))


def _ivr_call_class(pj: Any) -> Any:
    class IvrCall(pj.Call):
        def __init__(self, ivr: Ivr, call_id: int) -> None:
            super().__init__(ivr.stack.account, call_id)
            self.ivr = ivr
            self.pending = ""
            self.verdict: str | None = None
            self.gone = False

        def onDtmfDigit(self, prm: Any) -> None:
            digit = prm.digit
            self.ivr.record(event="digit", digit=digit)
            if self.verdict is not None:
                return
            if digit != "#":
                self.pending += digit
                return
            entry, self.pending = self.pending, ""
            ok = entry == self.ivr.pin
            self.verdict = "accepted" if ok else "rejected"
            self.ivr.record(event="entry", digits=entry, accepted=ok)
            if not ok:
                self.ivr.later(self.ivr.reject_delay, lambda: self.ivr._hangup(self))

        def onCallMediaState(self, prm: Any) -> None:
            connect_audio(self.ivr.stack, self)

        def onCallState(self, prm: Any) -> None:
            ci = self.info
            if ci.state.name == "DISCONNECTED" and not self.gone:
                self.gone = True
                self.ivr.record(event="ended", code=int(ci.lastStatusCode), verdict=self.verdict)

    return IvrCall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m daily_sip.standin.sip_farend", description=__doc__)
    parser.add_argument("--bind", default="127.0.0.1:5090", help="host:port (UDP) to answer on")
    parser.add_argument("--pin", required=True, help="the digits expected before '#'")
    parser.add_argument("--out", required=True, type=Path, help="JSON-lines file of what was heard")
    parser.add_argument("--ring", type=float, default=0.2, help="seconds of 180 Ringing before 200")
    parser.add_argument(
        "--reject-delay", type=float, default=0.5, help="seconds before hanging up on a wrong PIN"
    )
    args = parser.parse_args(argv)
    done = threading.Event()
    stack = SipStack(args.bind, deliver=lambda fn: fn(), user="ivr")
    ivr = Ivr(stack, args.pin, args.out, args.ring, args.reject_delay)
    stack.on_incoming = ivr.incoming
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    try:
        stack.start()
    except SipUnavailable as exc:
        print(f"sip_farend: {exc}", file=sys.stderr)
        return 2
    print("ready", flush=True)
    done.wait()
    open_calls = sum(1 for c in stack.objects if not c.gone)
    stack.close()
    ivr.record(event="closed", open_calls=open_calls)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
