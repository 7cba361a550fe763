"""The address bar as a link to a setup (gan_core.setup_link): written when a form's setup is shared, read when a
link is opened, and cleared once the setup it held has started. Only the setup's parameters: `?run=` (the run a
browser shows, ui.live) stays as it is."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping

import streamlit as st

from ui.text import md_escape

KEEP = ("run",)  # parameters that are not a setup's
_SEEN = "_setup_link_seen:"  # + form: the address last read (or written) as a setup, not read again


def params() -> dict[str, str]:
    return {k: st.query_params.get(k) for k in st.query_params}


def opened(form: str, is_setup: bool) -> bool:
    """A setup link this form has not read yet is in the address bar (then it is marked read)."""
    now = json.dumps(params(), sort_keys=True)
    if not is_setup or st.session_state.get(_SEEN + form) == now:
        return False
    st.session_state[_SEEN + form] = now
    return True


def write(form: str, setup: Mapping[str, str]) -> str:
    """Put `setup` in the address bar (keeping ?run=); the whole link, to copy."""
    kept = {k: v for k, v in params().items() if k in KEEP}
    st.query_params.from_dict({**kept, **setup})
    st.session_state[_SEEN + form] = json.dumps(params(), sort_keys=True)  # its own address: no link to open
    return address({**kept, **setup})


def clear(form: str) -> None:
    """The setup started: the address bar names the run again, not the form."""
    for name in [k for k in st.query_params if k not in KEEP]:
        del st.query_params[name]
    st.session_state[_SEEN + form] = json.dumps(params(), sort_keys=True)


def address(query: Mapping[str, str]) -> str:
    """The page's address with `query`: what a browser opening it sees (st.context.url: the address this browser uses;
    behind a proxy, the one the students use)."""
    here = urllib.parse.urlsplit(st.context.url or "")
    return urllib.parse.urlunsplit((here.scheme, here.netloc, here.path, urllib.parse.urlencode(query), ""))


def show(url: str) -> None:
    """The link, in a box with a copy button (Streamlit's code block has one)."""
    st.caption("Copy this link (the button at its right): it opens this form, filled in like this.")
    st.code(url, language=None, wrap_lines=True)


def refused(message: str) -> None:
    st.error(f"This link's setup cannot be opened: {md_escape(message)}", icon=":material/link_off:")
