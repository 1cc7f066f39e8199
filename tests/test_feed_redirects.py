"""A feed's own headers (``X-Api-Key: ${VENDOR_KEY}``, ``Authorization``) never follow a redirect to another
origin: two real HTTP servers on 127.0.0.1 (two ports, two origins); the second never sees them, while a redirect
within the source's origin still carries them; redirect loops and broken redirects are one clear error."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import redis

from alerts.ingest.poll import poll
from alerts.ingest.sources import Source, parse_sources
from alerts.settings import Settings
from alerts.store.publish import Publisher
from tests.feed_server import FeedServer, Route
from tests.test_feeds import PRICES, stream_events
from workers.roles.poller import make_publisher, poll_now

SECRET, TOKEN = "k3y-0f-the-vendor", "t0ken-0f-the-vendor"
SECRET_HEADERS = ("x-api-key", "authorization", "x-desk")


@pytest.fixture
def vendor() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.stop()


@pytest.fixture
def elsewhere() -> Iterator[FeedServer]:
    server = FeedServer()  # another port: another origin
    yield server
    server.stop()


@pytest.fixture
def publisher(client: redis.Redis, settings: Settings) -> Publisher:
    return make_publisher(client, settings)


def secret_source(url: str) -> Source:
    sources = parse_sources(f"""
sources:
  - name: vendor
    kind: json
    url: {url}
    every: 15m
    headers: {{X-Api-Key: "${{VENDOR_KEY}}", Authorization: "Bearer ${{VENDOR_TOKEN}}", X-Desk: light}}
    map: {{product: name, price: avg, unit: unit, as_of: date}}
""", "sources.yaml", {"VENDOR_KEY": SECRET, "VENDOR_TOKEN": TOKEN})
    assert not sources.problems, sources.problems
    (src,) = sources.sources
    return src


def carried(server: FeedServer, path: str) -> list[set[str]]:
    """For each request of ``path``: which of the source's headers it carried."""
    return [{h for h in SECRET_HEADERS if h in r.headers} for r in server.seen(path)]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_origin_goes_without_the_sources_headers(
        client: redis.Redis, publisher: Publisher, vendor: FeedServer, elsewhere: FeedServer, status: int) -> None:
    vendor.routes["/feed"] = Route(status=status, headers={"Location": elsewhere.url("/prices")})
    elsewhere.routes["/prices"] = Route(json.dumps(PRICES).encode())
    with httpx.Client() as http:
        r = poll(client, http, secret_source(vendor.url("/feed")), publisher)
    assert r.error is None and len(r.published) == 2
    assert carried(vendor, "/feed") == [set(SECRET_HEADERS)]
    assert vendor.seen("/feed")[0].headers["x-api-key"] == SECRET
    assert carried(elsewhere, "/prices") == [set()]  # the other origin never sees them
    assert all(SECRET not in v and TOKEN not in v for v in elsewhere.seen("/prices")[0].headers.values())


def test_a_redirect_within_the_origin_keeps_them_and_a_way_back_home_too(
        client: redis.Redis, publisher: Publisher, vendor: FeedServer, elsewhere: FeedServer) -> None:
    vendor.routes["/old"] = Route(status=301, headers={"Location": "/new"})  # relative: the same origin
    vendor.routes["/new"] = Route(status=302, headers={"Location": elsewhere.url("/hop")})
    elsewhere.routes["/hop"] = Route(status=307, headers={"Location": vendor.url("/prices")})
    vendor.routes["/prices"] = Route(json.dumps(PRICES).encode())
    with httpx.Client() as http:
        r = poll(client, http, secret_source(vendor.url("/old")), publisher)
    assert r.error is None and len(r.published) == 2 and len(stream_events(client)) == 2
    assert carried(vendor, "/old") == carried(vendor, "/new") == [set(SECRET_HEADERS)]
    assert carried(elsewhere, "/hop") == [set()]
    assert carried(vendor, "/prices") == [set(SECRET_HEADERS)]  # the source's own origin again


def test_the_pollers_own_clients_follow_the_same_rule(client: redis.Redis, settings: Settings, vendor: FeedServer,
                                                      elsewhere: FeedServer) -> None:
    """``alerts poll --once`` and the poll role: the poller's httpx client, whatever it would do alone."""
    vendor.routes["/feed"] = Route(status=302, headers={"Location": elsewhere.url("/prices")})
    elsewhere.routes["/prices"] = Route(json.dumps(PRICES).encode())
    r = poll_now(client, settings, secret_source(vendor.url("/feed")))
    assert r.error is None and len(r.published) == 2
    assert carried(elsewhere, "/prices") == [set()]
    with httpx.Client(follow_redirects=True) as following:  # even a client told to follow redirects
        r = poll(client, following, secret_source(vendor.url("/feed")), make_publisher(client, settings))
    assert r.error is None and carried(elsewhere, "/prices") == [set(), set()]


def test_redirect_loops_and_broken_redirects_are_one_clear_error(
        client: redis.Redis, publisher: Publisher, vendor: FeedServer, elsewhere: FeedServer) -> None:
    vendor.routes["/loop"] = Route(status=302, headers={"Location": elsewhere.url("/loop")})
    elsewhere.routes["/loop"] = Route(status=302, headers={"Location": vendor.url("/loop")})
    vendor.routes["/nowhere"] = Route(status=302)
    vendor.routes["/ftp"] = Route(status=302, headers={"Location": "ftp://127.0.0.1/x"})
    vendor.routes["/gone"] = Route(status=302, headers={"Location": elsewhere.url("/gone")})
    with httpx.Client() as http:
        loop = poll(client, http, secret_source(vendor.url("/loop")), publisher)
        nowhere = poll(client, http, secret_source(vendor.url("/nowhere")), publisher)
        ftp = poll(client, http, secret_source(vendor.url("/ftp")), publisher)
        gone = poll(client, http, secret_source(vendor.url("/gone")), publisher)
    assert loop.error == f"GET {vendor.url('/loop')}: more than 5 redirects"
    assert len(vendor.seen("/loop")) + len(elsewhere.seen("/loop")) == 6
    assert [h for r in elsewhere.seen("/loop") for h in SECRET_HEADERS if h in r.headers] == []
    assert nowhere.error is not None and "redirect without a Location" in nowhere.error
    assert ftp.error is not None and "redirect to something other than an http(s) URL" in ftp.error
    assert gone.error == f"GET {vendor.url('/gone')} (redirected to {elsewhere.base}): HTTP 404 Not Found"
    assert all(SECRET not in (e or "") and TOKEN not in (e or "") for e in (loop.error, nowhere.error, gone.error))
