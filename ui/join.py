"""The presenter's join panel: in the sidebar, the address students open and its QR code, and **Show on the projector**
with both large for the room. Where students join is the engine's answer (gan_core.classroom.join) to Streamlit's
server options; the QR code is an SVG data URL, drawn by the browser from the page (no media file behind it)."""

from __future__ import annotations

import streamlit as st

from gan_core.classroom import join
from ui.text import md_escape

PROJECTOR = "_join_projector_open"  # the dialog's open state: kept over full reruns, which would otherwise close it
SIDEBAR_QR_PX = 120  # the presenter's glance; the room scans the projector's
PROJECTOR_QR_PX = 500  # with the dialog's title and margins, it fits a 1280x720 projector without scrolling
ASK = "Scan the code with your phone's camera, or type this address into your browser:"


def where() -> join.Join:
    """Where students join this server, from Streamlit's server.address, server.port and server.baseUrlPath."""
    return join.where_to_join(st.get_option("server.address"), int(st.get_option("server.port")),
                              st.get_option("server.baseUrlPath") or "")


def panel() -> None:
    """The join address and its QR code, or why students cannot reach this server and how to fix it."""
    try:
        found = where()
    except ValueError as err:  # a malformed GAN_PUBLIC_URL: the message names it and what it must be
        st.error(md_escape(str(err)), icon=":material/link_off:")
        return
    if found.url is None:
        st.warning(str(found.problem), icon=":material/wifi_off:")
        return
    st.caption("**Students join here:**")
    st.code(found.url, language=None)  # its copy button: for a chat message or an e-mail
    st.image(join.qr_svg_data_uri(found.url), width=SIDEBAR_QR_PX)
    st.button("Show on the projector", icon=":material/fit_screen:", key="join_projector", on_click=_show, args=(True,))
    if st.session_state.get(PROJECTOR):
        projector(found.url)


def _show(open_: bool) -> None:
    st.session_state[PROJECTOR] = open_


@st.dialog("Join the class", width="large", on_dismiss=lambda: _show(False))
def projector(url: str) -> None:
    """The QR code and the address, large enough to read from the back of the room."""
    code, words = st.columns([5, 6], vertical_alignment="center")
    code.image(join.qr_svg_data_uri(url), width=PROJECTOR_QR_PX)
    # the sizes by the containers' keys, in a literal style block: the page's HTML is never built from text
    words.html("<style>.st-key-join_ask p { font-size: 1.5rem; line-height: 1.3; } .st-key-join_url p "
               "{ font-size: 2.6rem; font-weight: 700; line-height: 1.2; overflow-wrap: anywhere; }</style>")
    words.container(key="join_ask").markdown(md_escape(ASK))
    words.container(key="join_url").markdown(md_escape(url))
