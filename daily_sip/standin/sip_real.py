"""Real SIP calls placed by PJSIP (pjsua2): the stack behind ``--sip-mode real``.

One `SipStack` per process (PJSIP's endpoint is a singleton). PJSIP wants every call into it from
a thread it knows, so the stack owns one thread that created the library and runs every command;
PJSIP's own worker thread reports what the far end did, and `deliver` hands each report to the
caller's thread (the stand-in passes ``loop.call_soon_threadsafe``). SIP itself (INVITE, 100rel,
CANCEL, ACK, BYE, RFC 4733 telephone-events on RTP) is PJSIP's; this module only places, ends and
reports calls. The SDP offer is PJSIP's own codec list: the pjsua2-pybind11 binding neither exposes
codec priorities nor hands an edited offer back to PJSIP, so a dial-out's `codecs` are recorded,
not offered (docs/real-sip.md).

Example (against any SIP far end)::

    stack = SipStack("127.0.0.1:5070", deliver=lambda fn: fn())
    stack.start()
    stack.place("leg-1", "sip:busy@127.0.0.1:5090", listener)
    ...
    stack.close()
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger("daily_sip.standin.sip")

#: Simultaneous calls: the ceiling PJSUA_MAX_CALLS of the pjsua2-pybind11 wheel's build.
MAX_CALLS = 4


class SipUnavailable(RuntimeError):
    """The SIP stack cannot run here (module missing, port taken)."""


def import_pjsua2() -> Any:
    try:
        import pjsua2  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise SipUnavailable(
            "--sip-mode real needs PJSIP's Python binding: pip install 'daily-sip-flows[sip]' "
            f"(pjsua2-pybind11); import failed: {exc}"
        ) from exc
    return pjsua2


def split_bind(bind: str) -> tuple[str, int]:
    """``host:port`` -> (host, port); ValueError naming the setting otherwise."""
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"sip_bind must be host:port (e.g. 127.0.0.1:5070), got {bind!r}")
    return host, int(port)


class CallListener(Protocol):
    """What a placed call reports, in order: ringing (0..n), answered (0..1), ended (once)."""

    def ringing(self, code: int) -> None: ...

    def answered(self) -> None: ...

    def ended(self, code: int, reason: str, was_answered: bool) -> None: ...


@dataclass
class _Placed:
    leg_id: str
    listener: CallListener | None
    call: Any = None
    answered: bool = False
    ended: bool = False
    ringing_codes: list[int] = field(default_factory=list)


class SipStack:
    """A PJSIP user agent on `bind` (``host:port``, UDP) that places and ends calls."""

    def __init__(
        self,
        bind: str,
        deliver: Callable[[Callable[[], None]], object],
        *,
        user: str = "standin",
        log_level: int = 0,
        on_dtmf: Callable[[str, str, float], None] | None = None,
        on_incoming: Callable[[Any], None] | None = None,
        on_dialin: Callable[[str, str, str], tuple[int, CallListener | None]] | None = None,
    ) -> None:
        self.host, self.port = split_bind(bind)
        self.deliver = deliver
        self.user = user
        self.log_level = log_level
        self.on_dtmf = on_dtmf
        self.on_incoming = on_incoming
        #: `on_dialin(key, to_uri, from_uri) -> (code, listener)` decides each INVITE, called on
        #: PJSIP's thread and blocking it; without it INVITEs are refused 480.
        self.on_dialin = on_dialin
        self.calls: dict[str, _Placed] = {}
        #: Every PJSIP call object made here: a Call destroyed after libDestroy() aborts the
        #: process inside PJSIP, so they are all kept until just before it.
        self.objects: list[Any] = []
        self._commands: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: str | None = None
        self._lock = threading.Lock()
        self.pj: Any = None
        self.ep: Any = None
        self.account: Any = None

    # -- life ------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Start PJSIP on its own thread; raises `SipUnavailable` when it cannot."""
        self.pj = import_pjsua2()
        self._thread = threading.Thread(target=self._run, name="pjsip", daemon=True)
        # pjlib logs to stdout before any log setting applies; stdout's first line belongs to the
        # caller (the stand-in's URL), so that chatter is dropped.
        sys.stdout.flush()
        saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
        try:
            self._thread.start()
            started = self._ready.wait(timeout)
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        if not started:
            raise SipUnavailable("PJSIP did not start within 10 s")
        if self._error is not None:
            raise SipUnavailable(f"SIP stack could not start on {self.host}:{self.port}: {self._error}")

    def close(self, timeout: float = 5.0) -> None:
        """Hang up every call (CANCEL or BYE), wait for the dialogs to end, stop PJSIP."""
        if self._thread is None:
            return
        self._commands.put(self._shutdown)
        self._commands.put(None)
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        pj = self.pj
        ep = pj.Endpoint()
        try:
            ep.libCreate()
            cfg = pj.EpConfig()
            cfg.uaConfig.threadCnt = 1
            cfg.uaConfig.maxCalls = MAX_CALLS
            cfg.logConfig.level = self.log_level
            cfg.logConfig.consoleLevel = self.log_level
            cfg.logConfig.msgLogging = self.log_level > 0
            # RTP (telephone-events included) is clocked by the sound device; keep the null one open.
            cfg.medConfig.sndAutoCloseTime = -1
            ep.libInit(cfg)
            tc = pj.TransportConfig()
            tc.port = self.port
            tc.boundAddress = self.host
            ep.transportCreate(pj.TransportType.UDP, tc)
            ep.libStart()
            # No sound card: RTP flows through PJSIP's null audio device.
            ep.audDevManager.setNullDev()
            self.ep = ep
            self.account = _account_class(pj)(self)
            ac = pj.AccountConfig()
            ac.idUri = f"sip:{self.user}@{self.host}:{self.port}"
            self.account.create(ac, True)
        except Exception as exc:
            # Only the text leaves this thread: a kept traceback would free PJSIP objects later,
            # on a thread PJSIP does not know, which aborts the process.
            self._error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.account = None
            with contextlib.suppress(Exception):
                ep.libDestroy()
            self._ready.set()
            return
        self._ready.set()
        while True:
            command = self._commands.get()
            if command is None:
                break
            try:
                command()
            except Exception:
                log.exception("SIP command failed")
        self.objects.clear()
        for placed in self.calls.values():
            placed.call = None
        gc.collect()
        try:
            ep.libDestroy()
        except Exception:
            log.exception("PJSIP shutdown failed")

    def _shutdown(self) -> None:
        self.ep.hangupAllCalls()
        deadline = time.monotonic() + 3.0
        while self.open_calls() and time.monotonic() < deadline:
            time.sleep(0.05)

    def run(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the PJSIP thread."""
        self._commands.put(fn)

    def open_calls(self) -> int:
        with self._lock:
            return sum(1 for p in self.calls.values() if not p.ended)

    # -- calls -----------------------------------------------------------------

    def place(
        self,
        leg_id: str,
        uri: str,
        listener: CallListener,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        """INVITE `uri`; `listener` hears what the far end does (through `deliver`)."""
        placed = _Placed(leg_id, listener)
        with self._lock:
            self.calls[leg_id] = placed

        def go() -> None:
            pj = self.pj
            with self._lock:
                live = sum(1 for p in self.calls.values() if p.call is not None and not p.ended)
            if live >= MAX_CALLS:
                log.warning("%d calls up already (PJSIP's limit); %s fails unreachable", live, uri)
                self._report_end(placed, 503, f"Service Unavailable (at most {MAX_CALLS} calls at once)")
                return
            call = _call_class(pj)(self, placed)
            placed.call = call
            self.objects.append(call)
            op = pj.CallOpParam(True)
            for name, value in (headers or {}).items():
                h = pj.SipHeader()
                h.hName, h.hValue = name, value
                op.txOption.headers.append(h)
            try:
                call.makeCall(uri.split("?", 1)[0], op)
            except Exception as exc:
                log.warning("INVITE to %s failed: %s", uri, exc)
                self._report_end(placed, 503, "Service Unavailable")

        self.run(go)

    def hangup(self, leg_id: str) -> None:
        """CANCEL a ringing call, BYE an answered one; nothing for a call already ended."""

        def go() -> None:
            placed = self.calls.get(leg_id)
            if placed is None or placed.ended or placed.call is None:
                return
            try:
                placed.call.hangup(self.pj.CallOpParam(True))
            except Exception as exc:
                log.info("hangup of %s: %s", leg_id, exc)

        self.run(go)

    def send_dtmf(self, leg_id: str, tones: str, duration_ms: int) -> None:
        """Queue `tones` as RFC 4733 telephone-events on the call's RTP, `duration_ms` each."""

        def go() -> None:
            placed = self.calls.get(leg_id)
            if placed is None or placed.ended or placed.call is None:
                return
            prm = self.pj.CallSendDtmfParam()
            prm.digits = tones
            prm.duration = duration_ms
            prm.method = self.pj.DtmfMethod.RFC2833
            placed.call.sendDtmf(prm)

        self.run(go)

    def _incoming(self, prm: Any) -> None:
        """An INVITE, on PJSIP's worker thread: `on_dialin` decides, and the answer is sent from
        inside this callback (the binding keeps the GIL inside PJSIP calls, so answering later
        from another thread would deadlock against PJSIP's own callbacks)."""
        pj = self.pj
        placed = _Placed(f"in-{prm.callId}-{time.monotonic_ns()}", listener=None)
        call = _call_class(pj)(self, placed, prm.callId)
        placed.call = call
        self.objects.append(call)
        with self._lock:
            self.calls[placed.leg_id] = placed
        code = 480
        if self.on_dialin is not None:
            # To and From as PJSIP received them: asking PJSIP for the call's info here deadlocks.
            msg = prm.rdata.wholeMsg
            code, placed.listener = self.on_dialin(
                placed.leg_id, _header(msg, "To", "t"), _header(msg, "From", "f")
            )
        op = pj.CallOpParam()
        op.statusCode = pj.StatusCode(code)
        call.answer(op)

    # -- reports from PJSIP's worker thread -------------------------------------

    def _report_state(self, placed: _Placed, state: str, code: int, reason: str) -> None:
        listener = placed.listener
        if listener is None:  # an incoming call not decided yet
            if state == "DISCONNECTED":
                placed.ended = True
            return
        if state == "EARLY" and code in (180, 183) and code not in placed.ringing_codes:
            placed.ringing_codes.append(code)
            self.deliver(lambda: listener.ringing(code))
        elif state == "CONFIRMED" and not placed.answered:
            placed.answered = True
            self.deliver(listener.answered)
        elif state == "DISCONNECTED":
            self._report_end(placed, code, reason)

    def _report_end(self, placed: _Placed, code: int, reason: str) -> None:
        with self._lock:
            if placed.ended:
                return
            placed.ended = True
        answered, listener = placed.answered, placed.listener
        if listener is not None:
            self.deliver(lambda: listener.ended(code, reason, answered))


def _header(msg: str, name: str, compact: str) -> str:
    """The value of header `name` (or its compact form) in a SIP message PJSIP received."""
    m = re.search(rf"^(?:{name}|{compact})[ \t]*:[ \t]*(.*?)\r?$", msg, re.IGNORECASE | re.MULTILINE)
    return m.group(1).strip() if m else ""


def connect_audio(stack: SipStack, call: Any) -> None:
    """Wire an active call's audio to the null sound device both ways, as a phone would: the
    device's clock is what sends RTP, and with it the RFC 4733 events."""
    try:
        media = call.getAudioMedia(-1)
    except Exception:  # no active audio (yet)
        return
    dev = stack.ep.audDevManager
    playback = dev.playbackDevMedia() if callable(dev.playbackDevMedia) else dev.playbackDevMedia
    capture = dev.captureDevMedia() if callable(dev.captureDevMedia) else dev.captureDevMedia
    media.startTransmit(playback)
    capture.startTransmit(media)


def _account_class(pj: Any) -> Any:
    class Account(pj.Account):
        def __init__(self, stack: SipStack) -> None:
            super().__init__()
            self.stack = stack

        def onIncomingCall(self, prm: Any) -> None:
            # An exception escaping a PJSIP callback aborts the process.
            try:
                if self.stack.on_incoming is not None:
                    self.stack.on_incoming(prm)
                else:
                    self.stack._incoming(prm)
            except Exception:
                log.exception("incoming call")

    return Account


def _call_class(pj: Any) -> Any:
    class Call(pj.Call):
        def __init__(self, stack: SipStack, placed: _Placed, call_id: int = -1) -> None:
            super().__init__(stack.account, call_id)
            self.stack = stack
            self.placed = placed

        def onCallMediaState(self, prm: Any) -> None:
            try:
                connect_audio(self.stack, self)
            except Exception:  # escaping, it would abort the process
                log.exception("call media")

        def onCallState(self, prm: Any) -> None:
            try:
                ci = self.info
                self.stack._report_state(self.placed, ci.state.name, int(ci.lastStatusCode), ci.lastReason)
            except Exception:  # escaping, it would abort the process
                log.exception("call state")

    return Call
