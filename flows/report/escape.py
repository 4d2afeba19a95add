r"""User text is data, never markup: one place that makes it safe for every place it is shown.

Campaign and bridge names, SIP URIs, notes and Daily's free-text error messages reach markdown
(the summary and timeline artifacts, artifact descriptions, and the cells of table artifacts,
which the Prefect UI renders as markdown), run names, log lines and terminals. Each sink uses one
of these:

* `plain`: one line of text with no control characters (no newline, CR, tab, ESC sequence, BEL,
  C1 control, bidi override or zero-width mark; ZWJ/ZWNJ stay, as they are part of correct text).
  For run names and terminals: nothing can move the cursor, set the window title or reorder text.
* `md`: `plain`, then every character that can start markup backslash-escaped, so no heading,
  link, image, table cell break, HTML or autolink can be formed (and so no ``javascript:`` link).
* `unmd`: `md` undone, for showing an artifact's text in a terminal.

Examples:
    >>> print(md("Ops\n## ✅ succeeded: 4/4 joined"))
    Ops \#\# ✅ succeeded: 4/4 joined
    >>> print(md("[x](javascript:alert(1))"))
    \[x\]\(javascript:alert\(1\)\)
    >>> plain("\x1b]0;pwned\x07name\u202e")
    ']0;pwnedname'
    >>> unmd(md("a | b [c]"))
    'a | b [c]'
"""

from __future__ import annotations

import re
import unicodedata

# Zero-width non-joiner / joiner: format characters, yet part of correct text (Persian spelling,
# emoji sequences), as in the validators of names.
_KEEP = frozenset("\u200c\u200d")
# Line and paragraph breaks of any kind become one space: a name stays on its line.
_BREAKS = frozenset("\n\r\t\v\f\x1c\x1d\x1e\x85\u2028\u2029")
# Everything that can open or close inline markup, a link or an autolink, HTML, a heading, a
# table cell or strikethrough in CommonMark/GFM.
_MARKUP = "\\`*_[]()<>|~!#"
_ESCAPED = re.compile(r"\\([" + re.escape(_MARKUP + "-+.") + r"])")
# A list item or a rule only at the start: the Prefect UI renders a table cell as a markdown
# document of its own, so a cell's text does start a line.
_LEADING_BLOCK = re.compile(r"^(?:-|\+(?=\s|$)|\d{1,9}[.)](?=\s|$))")


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch not in _KEEP


def plain(text: object) -> str:
    """One line of text without control characters (breaks become spaces, the rest is dropped).

    >>> plain("a\\r\\nb\\tc\\x9b31m")
    'a  b c31m'
    """
    s = "" if text is None else str(text)
    return "".join(" " if ch in _BREAKS else ch for ch in s if ch in _BREAKS or not _is_control(ch))


def plain_lines(text: object) -> str:
    """`plain`, line by line: the newlines of a multi-line text (an artifact) are kept."""
    return "\n".join(plain(line) for line in str(text or "").split("\n"))


def md(text: object) -> str:
    """`plain` text escaped for markdown: shown exactly as written, never read as markup.

    >>> print(md("- 1. # <b>"), md("1. x"), md("2.0 s"))
    \\- 1. \\# \\<b\\> 1\\. x 2.0 s
    """
    escaped = "".join("\\" + ch if ch in _MARKUP else ch for ch in plain(text).strip())
    return _LEADING_BLOCK.sub(lambda m: m.group(0)[:-1] + "\\" + m.group(0)[-1], escaped)


# In a table cell (one line the Prefect UI renders as a markdown document of its own) these are
# all that can open markup anywhere; `#`, `-`, `+` and `1.` only at its start; parentheses and `!`
# only after a `]`, which is escaped.
_CELL_MARKUP = "\\`*_[]<>|~"
_CELL_LEADING = re.compile(r"^(?:#|-|\+(?=\s|$)|\d{1,9}[.)](?=\s|$))")


def cell(text: object) -> str:
    """`plain` text for a table cell: as safe as `md` there, with fewer backslashes to show
    (the UI's newer page shows cells as text), so DTMF ``12#`` and ``PBX (PIN)`` stay as written.

    >>> print(cell("[x](javascript:alert(1))"), cell("12#"), cell("# big"), cell("PBX (PIN)"))
    \\[x\\](javascript:alert(1)) 12# \\# big PBX (PIN)
    """
    escaped = "".join("\\" + ch if ch in _CELL_MARKUP else ch for ch in plain(text).strip())
    return _CELL_LEADING.sub(lambda m: m.group(0)[:-1] + "\\" + m.group(0)[-1], escaped)


def code(text: object) -> str:
    """Text for inside a code span (`` `...` ``), where backslashes do not escape: no backticks."""
    return plain(text).replace("`", "'")


def unmd(text: object) -> str:
    """What `md` escaped, shown as written (for a terminal), without control characters."""
    return plain(_ESCAPED.sub(r"\1", str(text or "")))
