"""Where students join (gan_core.classroom.join): the address (the teacher's override and its check, the URL's form, the
machine's network address, the lecture hall's balancer, a server only this machine can reach) and its QR code, read
back by a real decoder (zxing-cpp)."""

from __future__ import annotations

import io
import ipaddress
import re
import socket
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from gan_core import hall
from gan_core.classroom import join

LAN = "192.0.2.10"  # TEST-NET-1: an address of "the room's network" that no real machine has


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own GAN_PUBLIC_URL (or a hall around the test run) must not decide these tests."""
    monkeypatch.delenv(join.PUBLIC_URL_ENV, raising=False)
    monkeypatch.delenv(join.HALL_ENV, raising=False)


@pytest.fixture
def on_a_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(join, "lan_address", lambda: LAN)


def test_the_join_url_names_host_port_and_base_path():
    assert join.join_url("192.168.1.20", 8501) == "http://192.168.1.20:8501/"
    assert join.join_url("192.168.1.20", 80, "/gan/") == "http://192.168.1.20:80/gan/"
    assert join.join_url("fe80::1", 8501) == "http://[fe80::1]:8501/"
    with pytest.raises(ValueError, match="port must be 1-65535, not 0"):
        join.join_url("192.168.1.20", 0)


def test_the_lan_address_is_this_machines_network_address_never_loopback():
    address = join.lan_address()  # None on a machine with no network: both answers are right somewhere
    assert address is None or not ipaddress.ip_address(address).is_loopback
    assert address is None or ipaddress.ip_address(address).version == 4


class _Probe:
    """A UDP socket that answers `connect` as a machine with only loopback (`found`) or with no route at all (None)."""

    def __init__(self, found: str | None) -> None:
        self.found = found

    def __call__(self, *args: object) -> _Probe:
        return self

    def __enter__(self) -> _Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def connect(self, address: tuple[str, int]) -> None:
        if self.found is None:
            raise OSError("Network is unreachable")

    def getsockname(self) -> tuple[str, int]:
        return self.found or "", 40000


@pytest.mark.parametrize("found", [None, "127.0.0.1"])
def test_no_lan_address_where_only_loopback_exists(monkeypatch, found):
    monkeypatch.setattr(socket, "socket", _Probe(found))
    assert join.lan_address() is None


def test_the_server_on_every_interface_is_joined_at_the_lan_address(on_a_network):
    for everywhere in (None, "", "0.0.0.0", "::"):
        assert join.where_to_join(everywhere, 8501) == join.Join(url=f"http://{LAN}:8501/")
    assert join.where_to_join("10.1.2.3", 8502, "gan").url == "http://10.1.2.3:8502/gan/"  # one address: that one


@pytest.mark.parametrize("address", ["127.0.0.1", "localhost", "::1", "127.0.1.1"])
def test_a_server_on_loopback_says_students_cannot_reach_it_and_how_to_fix(on_a_network, address):
    found = join.where_to_join(address, 8501)
    assert found.url is None
    assert f"listens on {address} only" in found.problem and "--server.address 0.0.0.0" in found.problem
    assert join.PUBLIC_URL_ENV in found.problem


def test_without_a_network_it_says_so(monkeypatch):
    monkeypatch.setattr(join, "lan_address", lambda: None)
    found = join.where_to_join("0.0.0.0", 8501)
    assert found.url is None and "no network address" in found.problem


@pytest.mark.parametrize("url", ["http://192.168.1.20:8501/", "https://gan.school.example/class-3b", "HTTP://10.0.0.5"])
def test_the_teachers_public_url_wins(monkeypatch, on_a_network, url):
    monkeypatch.setenv(join.PUBLIC_URL_ENV, f"  {url} ")
    for address in ("127.0.0.1", "0.0.0.0"):  # behind a proxy on this machine the app itself may listen on loopback
        assert join.where_to_join(address, 8501) == join.Join(url=url)
    monkeypatch.setenv(join.PUBLIC_URL_ENV, " ")
    assert join.public_url() is None


@pytest.mark.parametrize("url", ["ftp://192.168.1.20/", "192.168.1.20:8501", "http://", "http:///path",
                                 "javascript:alert(1)", "http://host:99999/", "http://host:port/", "http://a b.example/",
                                 "http://host/\x7f"])
def test_a_malformed_public_url_is_refused_naming_the_variable(monkeypatch, url):
    monkeypatch.setenv(join.PUBLIC_URL_ENV, url)
    with pytest.raises(ValueError, match=r"^GAN_PUBLIC_URL must be an http:// or https:// address with a host"):
        join.where_to_join("0.0.0.0", 8501)
    with pytest.raises(ValueError, match="GAN_PUBLIC_URL"):
        hall.start(1, 8600)  # the hall refuses it before it starts anything


def test_behind_the_hall_students_open_the_balancers_port(monkeypatch, on_a_network):
    for balancer, expected in (("0.0.0.0", f"http://{LAN}:8600/"), ("::", f"http://{LAN}:8600/"),
                               ("10.1.2.3", "http://10.1.2.3:8600/")):
        env = hall.app_environment(8600, balancer, None)  # what the launcher gives each app process
        monkeypatch.setenv(join.HALL_ENV, env[join.HALL_ENV])
        assert join.where_to_join("127.0.0.1", 41234) == join.Join(url=expected)  # the app's own loopback port: never
    monkeypatch.setenv(join.HALL_ENV, hall.app_environment(8600, "127.0.0.1", None)[join.HALL_ENV])
    problem = join.where_to_join("127.0.0.1", 41234).problem
    assert "listens on 127.0.0.1 only" in problem and "python -m gan_core serve --address 0.0.0.0" in problem
    monkeypatch.setenv(join.HALL_ENV, "0.0.0.0")
    with pytest.raises(ValueError, match="GAN_HALL_LISTEN must be address:port"):
        join.where_to_join("127.0.0.1", 41234)


URLS = ["http://192.0.2.10:8501/", "https://gan.school.example/class-3b/?room=42", "http://[fe80::1]:8501/"]


@pytest.mark.parametrize("url", URLS)
def test_the_qr_code_holds_the_url(url):
    """zxing-cpp, a decoder of its own (what a phone's camera app runs), reads the URL back from the code's pixels."""
    import zxingcpp

    png = io.BytesIO()
    join.qr_code(url).save(png, kind="png", scale=4)
    pixels = np.asarray(Image.open(png).convert("L"))
    (found,) = zxingcpp.read_barcodes(pixels)
    assert found.format == zxingcpp.BarcodeFormat.QRCode and found.text == url


@pytest.mark.parametrize("url", URLS)
def test_the_svg_shown_draws_that_code_on_white(url):
    """The data URL the page shows, drawn module by module from its SVG path, is exactly qr_code(url)'s matrix, with
    the 4-module quiet zone and dark on white (a phone needs the contrast on a dark theme too)."""
    uri = join.qr_svg_data_uri(url)
    assert uri.startswith("data:image/svg+xml")
    svg = unquote(uri.split(",", 1)[1])
    assert "fill='#fff'" in svg and "stroke='#000'" in svg
    code = join.qr_code(url)
    size = code.symbol_size(scale=1, border=4)[0]
    assert f"width='{size}' height='{size}'" in svg
    drawn = np.zeros((size, size), dtype=bool)
    x = y = 0.0
    path = re.search(r"class='qrline'[^>]*\sd='([^']+)'", svg).group(1)
    for command, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?:\s(-?[\d.]+))?", path):
        if command == "M":
            x, y = float(a), float(b)
        elif command == "m":
            x, y = x + float(a), y + float(b)
        else:  # a horizontal stroke one module wide, centred on the row (y = row + 0.5)
            drawn[int(y), int(x):int(x + float(a))] = True
            x += float(a)
    expected = np.pad(np.array([[bool(v) for v in row] for row in code.matrix]), 4)
    assert (drawn == expected).all()
