"""This browser session's role: who it is to the run manager (an Actor), and the sidebar's presenter key field.

The rules live in gan_core.runs.roles and are enforced by the RunManager; this module only says who is asking. A session's
id and its presenter flag live in the server's st.session_state under keys no widget has, so no widget event a browser
sends can set them; the flag is set only by a right key, typed into the sidebar (never read from the URL).
"""

from __future__ import annotations

import os
import threading
import uuid

import streamlit as st

from gan_core.classroom.pace import RoomPace
from gan_core.classroom.store import open_store, state_url
from gan_core.runs.folder import default_runs_dir
from gan_core.runs.roles import SESSION_RUNS_ENV, Actor, Guess, KeyGuard, Limits, presenter_key
from ui import join

SESSION_ID = "_session_id"
XSRF_COOKIE = "_streamlit_xsrf"  # set by Streamlit once per browser (server.enableXsrfProtection, on by default)
PRESENTER = "_presenter_unlocked"
KEY_FIELD = "presenter_key"
_FAILURES = "_presenter_key_failures"
_WRONG = "_presenter_key_wrong"

_guards: dict[tuple[str, str], KeyGuard] = {}  # per key and room, shared by every session of this process
_guards_lock = threading.Lock()


def _guard(key: str) -> KeyGuard:
    """The key's guard: wrong guesses answered at the room's pace (one a second across every app process of the room,
    a row of its classroom store in the server's runs folder)."""
    url = state_url(default_runs_dir())
    with _guards_lock:
        if (key, url) not in _guards:
            _guards[(key, url)] = KeyGuard(key, pace=RoomPace(open_store(url)))
        return _guards[(key, url)]


def session_id() -> str:
    """This browser session's id: random, made on its first page, kept on the server for the session's life."""
    if SESSION_ID not in st.session_state:
        st.session_state[SESSION_ID] = uuid.uuid4().hex
    return st.session_state[SESSION_ID]


def browser_id() -> str:
    """This browser's id, the same in each of its tabs: what runs and answers belong to, so a student's quota, queued
    work and one answer per question count per browser, not per tab.

    It is the XSRF cookie Streamlit sets once per browser (every tab of it sends the same one), never shown or stored as
    is (the run manager keeps an opaque token of it). A cookie, not the client's address: a class behind one NAT or a
    proxy shares an address, and would share one quota. Where there is no cookie (XSRF protection switched off, a
    script that sends none) it is the session's own id: such a client is bound per tab, and the server-wide bounds (the
    queue's length, the lesson going first) still hold it."""
    cookie = _cookie(XSRF_COOKIE)
    return f"browser:{cookie}" if cookie else session_id()


PROXY_ENV = "GAN_BEHIND_PROXY"  # set by the lecture hall's launcher (gan_core.hall): HAProxy on this machine in front


def client_address() -> str | None:
    """The client's IP address (None on this machine, or where Streamlit does not know it). Behind the lecture hall's
    balancer every request comes from loopback: the client is then the address HAProxy added to X-Forwarded-For."""
    try:
        address = st.context.ip_address
        forwarded = st.context.headers.get_all("X-Forwarded-For") if os.environ.get(PROXY_ENV) else []
    except Exception:  # noqa: BLE001 - no request behind this session (a test harness)
        return None
    return forwarded_client(address if isinstance(address, str) else None, forwarded)


def forwarded_client(address: str | None, forwarded: list[str]) -> str | None:
    """The client behind a trusted proxy on this machine: the last X-Forwarded-For entry (the one the proxy added; a
    client can forge the earlier ones), only for a request that came from loopback; else the direct address."""
    if address not in ("127.0.0.1", "::1") or not forwarded:
        return address
    last = forwarded[-1].split(",")[-1].strip()
    return last[:64] or address


def _cookie(name: str) -> str | None:
    try:
        value = st.context.cookies.get(name)
    except Exception:  # noqa: BLE001 - no request behind this session (a test harness): no cookie
        return None
    return value if isinstance(value, str) and 8 <= len(value) <= 200 else None


def is_presenter() -> bool:
    """With no presenter key every session is the presenter; with one, only a session that typed it."""
    return presenter_key() is None or st.session_state.get(PRESENTER) is True


def actor() -> Actor:
    """Who this session is to the run manager."""
    return Actor(browser_id(), presenter=is_presenter())


def _unlock() -> None:
    """The key field's callback: compare the guess (slowly after wrong ones), then forget it and clear the field."""
    guess = st.session_state.get(KEY_FIELD) or ""
    st.session_state[KEY_FIELD] = ""  # never sent back to the browser, never kept
    key = presenter_key()
    if not guess or key is None:
        return
    failures = int(st.session_state.get(_FAILURES, 0))
    answer = _guard(key).check(guess, failures, client_address())
    if answer is Guess.RIGHT:
        st.session_state[PRESENTER] = True
        st.session_state[_FAILURES] = 0
    elif answer is Guess.WRONG:
        st.session_state[_FAILURES] = failures + 1
        st.session_state[_WRONG] = "That is not the presenter key."
    else:
        st.session_state[_WRONG] = "Too many key guesses are waiting right now: try again in a few seconds."


def role_panel(limits: Limits) -> None:
    """In the sidebar, when a presenter key is set: the key field (until this session is the presenter) and what this
    browser may do; for the presenter, where students join (ui.join). Nothing at all without a key."""
    if presenter_key() is None:
        return
    if is_presenter():
        st.caption(":material/co_present: **Presenter**: you control every run, and can delete runs.")
        join.panel()  # the address students open, and its QR code: only the presenter hands it out
        return
    st.text_input("Presenter key", type="password", key=KEY_FIELD, on_change=_unlock, autocomplete="off",
                  help="The teacher's key: it gives this browser every control. Students need none.")
    if wrong := st.session_state.pop(_WRONG, None):
        st.error(str(wrong), icon=":material/key_off:")
    if limits.session_runs == 0:
        st.caption(f"You watch every run; this server lets students start none ({SESSION_RUNS_ENV}=0).")
    else:
        runs = "run" if limits.session_runs == 1 else "runs"
        st.caption(f"You watch every run, may have {limits.session_runs} active {runs} of your own at a time (up to "
                   f"{limits.session_steps:,} steps in all), and control only the runs you started.")
