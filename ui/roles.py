"""This browser session's role: who it is to the run manager (an Actor), and the sidebar's presenter key field.

The rules live in gan_core.runs.roles and are enforced by the RunManager; this module only says who is asking. A session's
id and its presenter flag live in the server's st.session_state under keys no widget has, so no widget event a browser
sends can set them; the flag is set only by a right key, typed into the sidebar (never read from the URL).
"""

from __future__ import annotations

import threading
import uuid

import streamlit as st

from gan_core.runs.roles import SESSION_RUNS_ENV, Actor, KeyGuard, presenter_key

SESSION_ID = "_session_id"
PRESENTER = "_presenter_unlocked"
KEY_FIELD = "presenter_key"
_FAILURES = "_presenter_key_failures"
_WRONG = "_presenter_key_wrong"

_guards: dict[str, KeyGuard] = {}  # one per key, shared by every session: wrong guesses are slowed server-wide
_guards_lock = threading.Lock()


def _guard(key: str) -> KeyGuard:
    with _guards_lock:
        return _guards.setdefault(key, KeyGuard(key))


def session_id() -> str:
    """This browser session's id: random, made on its first page, kept on the server for the session's life."""
    if SESSION_ID not in st.session_state:
        st.session_state[SESSION_ID] = uuid.uuid4().hex
    return st.session_state[SESSION_ID]


def is_presenter() -> bool:
    """With no presenter key every session is the presenter; with one, only a session that typed it."""
    return presenter_key() is None or st.session_state.get(PRESENTER) is True


def actor() -> Actor:
    """Who this session is to the run manager."""
    return Actor(session_id(), presenter=is_presenter())


def _unlock() -> None:
    """The key field's callback: compare the guess (slowly after wrong ones), then forget it and clear the field."""
    guess = st.session_state.get(KEY_FIELD) or ""
    st.session_state[KEY_FIELD] = ""  # never sent back to the browser, never kept
    key = presenter_key()
    if not guess or key is None:
        return
    failures = int(st.session_state.get(_FAILURES, 0))
    if _guard(key).check(guess, failures):
        st.session_state[PRESENTER] = True
        st.session_state[_FAILURES] = 0
    else:
        st.session_state[_FAILURES] = failures + 1
        st.session_state[_WRONG] = True


def role_panel(session_runs: int) -> None:
    """In the sidebar, when a presenter key is set: the key field (until this session is the presenter) and what this
    session may do. Nothing at all without a key."""
    if presenter_key() is None:
        return
    if is_presenter():
        st.caption(":material/co_present: **Presenter**: you control every run, and can delete runs.")
        return
    st.text_input("Presenter key", type="password", key=KEY_FIELD, on_change=_unlock, autocomplete="off",
                  help="The teacher's key: it gives this browser every control. Students need none.")
    if st.session_state.pop(_WRONG, False):
        st.error("That is not the presenter key.", icon=":material/key_off:")
    if session_runs == 0:
        st.caption(f"You watch every run; this server lets students start none ({SESSION_RUNS_ENV}=0).")
    else:
        runs = "run" if session_runs == 1 else "runs"
        st.caption(f"You watch every run, may have {session_runs} active {runs} of your own at a time, and control "
                   "only the runs you started.")
