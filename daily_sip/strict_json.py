"""Parse untrusted JSON bytes into plain data that can always be written back out, or refuse them.

Python's `json.loads` accepts more than JSON (RFC 8259, https://www.rfc-editor.org/rfc/rfc8259):
``NaN``, ``Infinity`` and ``1e999`` become floats that `json.dumps(allow_nan=False)` (Starlette's
`JSONResponse`) cannot write back, a body nested a few thousand levels deep raises
`RecursionError`, and an integer of more than 4,300 digits raises a bare `ValueError`. Whatever
a server parses it may keep (a request log) and answer later, so a body is refused here, once,
with `InvalidJSON` (a `ValueError`) naming the reason:

>>> loads(b'{"a": [1, 2.5, "x", null, true]}')
{'a': [1, 2.5, 'x', None, True]}
>>> loads(b'{"seconds": NaN}')
Traceback (most recent call last):
...
daily_sip.strict_json.InvalidJSON: NaN is not a JSON number
>>> loads(b"[" * 200 + b"]" * 200)
Traceback (most recent call last):
...
daily_sip.strict_json.InvalidJSON: nested deeper than 64 levels
"""

from __future__ import annotations

import json
import math
from typing import Any

#: No Daily request or webhook body nests more than ~6 levels; this leaves room and keeps
#: every later walk over the data (validation, logging, `json.dumps`) far from the recursion limit.
MAX_DEPTH = 64
#: Longer than any id, timestamp or count in Daily's API (64-bit values have 20 digits).
MAX_INT_DIGITS = 64


class InvalidJSON(ValueError):
    """The bytes are not JSON this process accepts; the message says why (no input echoed)."""


def _constant(name: str) -> Any:
    raise InvalidJSON(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidJSON(f"number {text[:20]} is out of range")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise InvalidJSON(f"an integer has {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def depth_of(value: Any) -> int:
    """How deeply lists and objects nest in `value` (iterative, so any depth is safe).

    >>> depth_of({"a": [1, {"b": []}]}), depth_of(3)
    (4, 0)
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            node = node.values()
        elif not isinstance(node, list):
            continue
        level += 1
        deepest = max(deepest, level)
        if level <= MAX_DEPTH:
            stack.extend((child, level) for child in node)
    return deepest


def loads(raw: bytes | str) -> Any:
    """`raw` parsed as strict JSON (UTF-8), or `InvalidJSON` saying what is wrong with it."""
    try:
        value = json.loads(raw, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except InvalidJSON:
        raise
    except RecursionError:
        raise InvalidJSON(f"nested deeper than {MAX_DEPTH} levels") from None
    except UnicodeDecodeError:
        raise InvalidJSON("the body is not UTF-8") from None
    except ValueError as exc:  # JSONDecodeError and anything the number parsers raise
        raise InvalidJSON(str(exc)) from None
    if depth_of(value) > MAX_DEPTH:
        raise InvalidJSON(f"nested deeper than {MAX_DEPTH} levels")
    return value
