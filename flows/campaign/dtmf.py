"""DTMF scripts: tones with pauses, cut into the ``sendDTMF`` calls Daily accepts.

A script is a string of tones (``0-9 A-D * #``) and pause characters:

* ``,`` waits 1 s (the dialler convention, e.g. Cisco UCCX's Send Digit String);
* ``w`` waits 0.5 s (Twilio's ``sendDigits``), ``W`` waits 1 s (Twilio, Asterisk ``SendDTMF``).

A plain string of tones is a script without pauses. Daily's ``sendDTMF`` takes 1-20 tones and no
pause characters (https://docs.daily.co/reference/rest-api/rooms/dial-out/send-dtmf), so every run
of tones between pauses is sent as successive calls of at most 20 tones, preferably cut right
after a ``#`` (the end of an IVR entry), and the pauses become waits between those calls.

Whether Daily answers ``sendDTMF`` before the tones have played is not documented, so the next
call waits until the previous tones have had time to play (tones x digit duration) plus the pause.

Example:
    >>> [(s.tones, s.wait_before) for s in parse_script("123456789#,,,1234#").steps]
    [('123456789#', 0.0), ('1234#', 3.0)]
"""

from __future__ import annotations

from dataclasses import dataclass

#: Seconds each pause character waits.
PAUSES = {",": 1.0, "w": 0.5, "W": 1.0}
TONES = frozenset("0123456789ABCD*#")
#: Daily's limit of tones per ``sendDTMF`` call.
MAX_TONES_PER_CALL = 20
#: Daily's default ``digitDurationMs`` (https://docs.daily.co/reference/rest-api/rooms/dial-out/send-dtmf).
DEFAULT_DIGIT_MS = 500
#: Our own limits on a script, so a typo cannot keep a leg busy for minutes.
MAX_SCRIPT_CHARS = 200
MAX_SCRIPT_SECONDS = 120.0


@dataclass(frozen=True)
class DtmfStep:
    """One ``sendDTMF`` call: wait ``wait_before`` seconds (after the previous step was sent), then send."""

    tones: str
    wait_before: float


@dataclass(frozen=True)
class DtmfScript:
    """A parsed script: its steps and the pause that follows the last tone."""

    text: str
    steps: tuple[DtmfStep, ...]
    trailing_pause: float = 0.0

    @property
    def tones(self) -> str:
        return "".join(s.tones for s in self.steps)

    def play_seconds(self, tones: str, digit_ms: int | None) -> float:
        return len(tones) * (digit_ms or DEFAULT_DIGIT_MS) / 1000.0

    def timed(self, digit_ms: int | None = None) -> list[tuple[float, str]]:
        """``(seconds after the first call, tones)`` per call: pauses plus the time tones take to play.

        Example:
            >>> parse_script("12#,34#").timed(100)
            [(0.0, '12#'), (1.3, '34#')]
        """
        out, at, previous = [], 0.0, ""
        for step in self.steps:
            at += self.play_seconds(previous, digit_ms) + step.wait_before
            out.append((round(at, 6), step.tones))
            previous = step.tones
        return out

    def wait_before(self, index: int, digit_ms: int | None = None) -> float:
        """Seconds to wait before call ``index`` (after call ``index - 1`` was sent)."""
        step = self.steps[index]
        previous = self.steps[index - 1].tones if index else ""
        return self.play_seconds(previous, digit_ms) + step.wait_before

    def duration(self, digit_ms: int | None = None) -> float:
        """Seconds from the first call until the last tone has played and the trailing pause passed.

        Example:
            >>> parse_script("123456789#,,,1234#").duration()
            10.5
        """
        if not self.steps:
            return self.trailing_pause
        last_at = self.timed(digit_ms)[-1][0]
        return last_at + self.play_seconds(self.steps[-1].tones, digit_ms) + self.trailing_pause

    def leading_pause(self) -> float:
        return self.steps[0].wait_before if self.steps else 0.0


def _split(run: str) -> list[str]:
    """Cut a run of tones into pieces of <= 20, each ending after the last ``#`` that fits."""
    pieces = []
    while len(run) > MAX_TONES_PER_CALL:
        head = run[:MAX_TONES_PER_CALL]
        cut = head.rfind("#") + 1 or MAX_TONES_PER_CALL
        pieces.append(run[:cut])
        run = run[cut:]
    if run:
        pieces.append(run)
    return pieces


def check_script(text: str) -> str:
    """Raise ValueError naming what is wrong with a script; returns it with tones upper-cased.

    Example:
        >>> check_script("123#,,a1#")
        '123#,,A1#'
    """
    text = "".join(ch.upper() if ch in "abcd" else ch for ch in text)
    if not text:
        raise ValueError("is empty: give tones such as '123456#'")
    if len(text) > MAX_SCRIPT_CHARS:
        raise ValueError(f"has {len(text)} characters, at most {MAX_SCRIPT_CHARS} are allowed")
    bad = sorted({ch for ch in text if ch not in TONES and ch not in PAUSES})
    if bad:
        raise ValueError(
            f"has invalid tones {bad}; allowed are 0-9, A-D, * and #, and the pauses "
            "',' (1 s), 'w' (0.5 s) and 'W' (1 s)"
        )
    if not any(ch in TONES for ch in text):
        raise ValueError("has only pauses: give at least one tone")
    return text


def parse_script(text: str) -> DtmfScript:
    """Parse a checked script into its ``sendDTMF`` steps.

    Example:
        >>> [s.tones for s in parse_script("1" * 25).steps]
        ['11111111111111111111', '11111']
    """
    text = check_script(text)
    steps: list[DtmfStep] = []
    pause, run = 0.0, ""
    for ch in text + "\0":
        if ch in TONES:
            run += ch
            continue
        if run:
            for i, piece in enumerate(_split(run)):
                steps.append(DtmfStep(piece, pause if i == 0 else 0.0))
            pause, run = 0.0, ""
        pause += PAUSES.get(ch, 0.0)
    return DtmfScript(text=text, steps=tuple(steps), trailing_pause=pause)
