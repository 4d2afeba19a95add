"""The pacer's book on disk, so that a restarted pacer knows what its predecessor granted.

Daily's windows outlive a pacer process: a pacer killed and restarted at once (a crash, a
deploy, ``kill -9``) that started from an empty book would grant a full window on top of calls
Daily counted seconds ago, and Daily answers 429 (5 x 429 measured with 10 campaigns). So every
grant, answer and 429 rewrites this file (temporary file + ``os.replace``: a reader sees the old
book or the new one, never half of one), and a starting pacer reads it: open permits stay open
under the same ids (their callers report them to the new process), closed ones keep their place
in the window. Times are written as ages plus the wall-clock instant of writing, because the
monotonic clock the book runs on starts anew with each process.

No ``fsync``: a killed process loses nothing the kernel already has; after a crash of the whole
machine the reboot takes longer than any of Daily's windows.

An exclusive ``flock`` on ``<file>.lock`` keeps a second pacer from sharing the file (two books
in one file would each overwrite the other's grants); the kernel drops it when its process dies,
however it dies.

Example:
    ```python
    store = StateFile(Path("pacer-8789.json"))   # raises StateFileError if another pacer holds it
    lines = store.load(now=time.monotonic())     # [(account, rate, index, PermitBook), ...]
    store.save([(account, rate, index, book)], now=time.monotonic())
    ```
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path
from typing import IO, Any

from daily_sip.tasks.window import PermitBook


class StateFileError(Exception):
    """The state file cannot be used (held by another pacer, unreadable, not ours)."""


def default_state_file(host: str, port: int) -> Path | None:
    """Where a pacer on ``host:port`` keeps its book by default: a restart on the same address
    (the one its clients know) finds it. ``None`` for ``--port 0``: that pacer cannot be
    restarted at the same URL anyway."""
    if port == 0:
        return None
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "daily-sip" / f"pacer-{host.replace(':', '_')}-{port}.json"


class StateFile:
    """One pacer's book file, locked for as long as this object lives (see `close`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._lock: IO[str] | None = open(path.with_name(path.name + ".lock"), "w")
        except OSError as exc:
            raise StateFileError(f"state file {path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.close()
            raise StateFileError(
                f"state file {path} is in use by another pacer; give this one its own --state-file"
            ) from None

    def load(self, now: float) -> list[tuple[str, str, int, PermitBook]]:
        """The books written last, aged by the time since; ``[]`` if there is no file yet."""
        try:
            raw = json.loads(self.path.read_text())
            elapsed = max(0.0, time.time() - float(raw["saved_at"]))
            return [
                (
                    str(line["account"]),
                    str(line["rate"]),
                    int(line["index"]),
                    PermitBook.from_state(line["book"], now - elapsed),
                )
                for line in raw["lines"]
            ]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StateFileError(
                f"state file {self.path} is unreadable ({type(exc).__name__}); a pacer that "
                "forgot its grants would exceed Daily's window: wait one minute, then delete it"
            ) from None

    def save(self, lines: list[tuple[str, str, int, PermitBook]], now: float) -> None:
        """Write every book as of ``now`` (atomically: readers see this book or the last one)."""
        state: dict[str, Any] = {
            "saved_at": time.time(),
            "lines": [
                {"account": account, "rate": rate, "index": index, "book": book.state(now)}
                for account, rate, index, book in lines
            ],
        }
        self._tmp.write_text(json.dumps(state, separators=(",", ":")))
        os.replace(self._tmp, self.path)

    def close(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self._lock.close()  # releases the flock
            self._lock = None
