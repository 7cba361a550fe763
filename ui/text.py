"""User text inside Streamlit markdown (st.markdown, st.error, st.success, captions…): shown as the characters typed.

Streamlit never renders raw HTML without unsafe_allow_html, but its markdown still turns `**x**`, `[a](url)`,
`:red[x]`, `$x$` and a leading `#` into formatting, links and maths. A file name or anything else a browser sent goes
through `md_escape` before it reaches a markdown string.
"""

from __future__ import annotations

import string

_PUNCTUATION = frozenset(string.punctuation)  # CommonMark: any ASCII punctuation may be backslash-escaped


def md_escape(text: str) -> str:
    """`text` as literal markdown on one line: every ASCII punctuation character backslash-escaped, every unprintable
    character (a newline, NUL, a lone surrogate) written as its escape sequence."""
    out = []
    for c in str(text):
        if not c.isprintable():
            c = ascii(c)[1:-1]  # e.g. "\\n": its backslash is escaped below like any other
            out.extend("\\" + d if d in _PUNCTUATION else d for d in c)
        elif c in _PUNCTUATION:
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


def minus(text: str) -> str:
    """A typographic minus sign in numbers shown to readers (−0.2, not -0.2)."""
    return text.replace("-", "−")
