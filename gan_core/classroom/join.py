"""Where students join the class: the address they open (the server's on the room's network, never localhost) and its QR
code.

The address, in order: GAN_PUBLIC_URL when the teacher sets it (a server behind NAT or a proxy knows no better); behind
the lecture hall's balancer (gan_core.hall), the balancer's address and port, which the launcher hands its apps in
GAN_HALL_LISTEN (its apps listen on loopback ports no student can reach); else the app's own address and port. An app
that listens on loopback only cannot be reached from another machine: `where_to_join` says so and how to fix it rather
than give an address that cannot work. No Streamlit here: the UI passes Streamlit's options in.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import segno

PUBLIC_URL_ENV = "GAN_PUBLIC_URL"
HALL_ENV = "GAN_HALL_LISTEN"  # "address:port" of the hall's balancer, set by gan_core.hall for its apps
APP_FIX = "streamlit run dashboard.py --server.address 0.0.0.0"
HALL_FIX = "python -m gan_core serve --address 0.0.0.0"
# connect() on a UDP socket only asks the kernel for a route: no packet is sent, and no network reply is needed
_PROBE = ("10.255.255.255", 1)


@dataclass(frozen=True)
class Join:
    """What students open (`url`), or why there is nothing they can open (`problem`, a sentence saying the fix)."""

    url: str | None = None
    problem: str | None = None


def public_url() -> str | None:
    """GAN_PUBLIC_URL, checked: None when unset or blank; ValueError naming it when it is not an http(s) address with a
    host."""
    value = os.environ.get(PUBLIC_URL_ENV, "").strip()
    if not value:
        return None
    refusal = ValueError(f"{PUBLIC_URL_ENV} must be an http:// or https:// address with a host and no spaces, e.g. "
                         f"http://192.168.1.20:8501, not {value[:80]!r}")
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a port that is not a number in 0-65535
    except ValueError:
        raise refusal from None
    if (parts.scheme.lower() not in ("http", "https") or not parts.hostname or port == 0
            or not value.isprintable() or any(c.isspace() for c in value)):
        raise refusal
    return value


def hall_listen() -> tuple[str, int] | None:
    """The hall's balancer (its address and port) when this app runs behind it, else None."""
    raw = os.environ.get(HALL_ENV, "").strip()
    if not raw:
        return None
    address, _, port = raw.rpartition(":")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{HALL_ENV} must be address:port (set by `python -m gan_core serve`), not {raw[:80]!r}")
    return address.strip("[]"), int(port)


def lan_address() -> str | None:
    """This machine's IPv4 address on its network (the one its traffic leaves from), or None where it has only loopback
    (no network connected)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(_PROBE)
            address = probe.getsockname()[0]
    except OSError:  # no route at all: offline
        return None
    ip = ipaddress.ip_address(address)
    return None if ip.is_loopback or ip.is_unspecified else address


def join_url(host: str, port: int, base_path: str = "") -> str:
    """The address students type: http://host:port/base_path/ (an IPv6 host in brackets)."""
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be 1-65535, not {port}")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    path = base_path.strip("/")
    return f"http://{host}:{port}/{path + '/' if path else ''}"


def is_loopback(address: str) -> bool:
    """True for an address only this machine can reach (127.x, ::1, localhost)."""
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:  # a host name: it may well be reachable
        return False


def _every_interface(address: str) -> bool:
    return address.strip("[]") in ("", "0.0.0.0", "::")


def where_to_join(address: str | None, port: int, base_path: str = "", fix: str = APP_FIX) -> Join:
    """What students open, given where this server listens (Streamlit's server.address, None or "" for every interface,
    and server.port; `fix`: the command that makes it listen on every interface). ValueError naming the variable when
    GAN_PUBLIC_URL or GAN_HALL_LISTEN is malformed."""
    public = public_url()
    if public is not None:
        return Join(url=public)
    hall = hall_listen()
    if hall is not None:  # behind the hall students open the balancer, never this app's loopback port
        address, port, fix = *hall, HALL_FIX
    address = address or ""
    if is_loopback(address):
        return Join(problem=f"This server listens on {address} only, so students' computers cannot reach it. "
                            f"Restart it with `{fix}`, or set `{PUBLIC_URL_ENV}` to the address students open.")
    host = lan_address() if _every_interface(address) else address
    if host is None:
        return Join(problem="This computer has no network address: connect it to the room's network (Wi-Fi or cable), "
                            "then reload the page.")
    return Join(url=join_url(host, port, base_path))


def qr_code(url: str) -> segno.QRCode:
    """The QR code of `url`. Error level M (15% of it may be lost): a projector's glare, a phone at the back of the room."""
    return segno.make(url, error="m", micro=False)


@functools.lru_cache(maxsize=8)
def qr_svg_data_uri(url: str) -> str:
    """`qr_code(url)` as an SVG data URL: the browser draws it from the page itself (no media file to fetch), sharp at
    any size. Dark modules on white whatever the page's theme, with the standard 4-module margin: a camera needs both."""
    return qr_code(url).svg_data_uri(scale=1, border=4, dark="#000", light="#fff")
