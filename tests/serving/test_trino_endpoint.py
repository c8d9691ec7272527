"""serve --history trino reaches the Trino the chart configures (CANDLEFLOW_SERVING_TRINO_*)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
import trino.auth

from candleflow.config import StackSettings
from serving.history import Tables
from serving.history_backend import make_history
from serving.history_trino import TrinoHistory, connect_args
from serving.settings import ServingSettings

STACK = StackSettings(host="127.0.0.9", trino_port=18080)


def test_without_url_the_local_stack_trino():
    args = connect_args(STACK, ServingSettings())
    assert args == {"host": "127.0.0.9", "port": 18080, "http_scheme": "http", "user": "candleflow"}


@pytest.mark.parametrize(
    ("url", "host", "port", "scheme"),
    [
        ("http://trino.trino.svc:8080", "trino.trino.svc", 8080, "http"),
        ("https://trino.example.com", "trino.example.com", 443, "https"),
        ("http://trino", "trino", 8080, "http"),
    ],
)
def test_url_from_env(monkeypatch: pytest.MonkeyPatch, url, host, port, scheme):
    monkeypatch.setenv("CANDLEFLOW_SERVING_TRINO_URL", url)
    monkeypatch.setenv("CANDLEFLOW_SERVING_TRINO_USER", "serving")
    args = connect_args(STACK, ServingSettings())
    assert args == {"host": host, "port": port, "http_scheme": scheme, "user": "serving"}


def test_password_or_token_become_auth(monkeypatch: pytest.MonkeyPatch):
    secret = "s-" + "9" * 6
    monkeypatch.setenv("CANDLEFLOW_SERVING_TRINO_URL", "https://trino:8443")
    monkeypatch.setenv("CANDLEFLOW_SERVING_TRINO_PASSWORD", secret)
    auth = connect_args(STACK, ServingSettings())["auth"]
    assert isinstance(auth, trino.auth.BasicAuthentication)
    assert (auth._username, auth._password) == ("candleflow", secret)
    assert secret not in repr(ServingSettings())
    monkeypatch.delenv("CANDLEFLOW_SERVING_TRINO_PASSWORD")
    monkeypatch.setenv("CANDLEFLOW_SERVING_TRINO_ACCESS_TOKEN", secret)
    auth = connect_args(STACK, ServingSettings())["auth"]
    assert isinstance(auth, trino.auth.JWTAuthentication) and auth.token == secret


@pytest.mark.parametrize("url", ["trino:8080", "ftp://trino", "http://"])
def test_bad_url_names_the_setting(url):
    with pytest.raises(ValueError, match="CANDLEFLOW_SERVING_TRINO_URL"):
        connect_args(STACK, ServingSettings(trino_url=url))


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.seen.append((self.path, self.headers.get("X-Trino-User", ""), self.headers["Host"]))
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_trino() -> Iterator[int]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()


def test_make_history_queries_the_configured_trino(monkeypatch: pytest.MonkeyPatch, fake_trino):
    """The statement reaches the URL's host:port as the configured user (not localhost)."""
    monkeypatch.setenv("CANDLEFLOW_SERVING_TRINO_URL", f"http://127.0.0.1:{fake_trino}")
    monkeypatch.setenv("CANDLEFLOW_SERVING_TRINO_USER", "svc-serving")
    _Recorder.seen.clear()
    h = make_history("trino", STACK, Tables())
    assert isinstance(h, TrinoHistory)
    conn = h.connect()
    with pytest.raises(Exception):  # noqa: B017 (the fake answers 503)
        conn.cursor().execute("SELECT 1")
    assert _Recorder.seen[0] == ("/v1/statement", "svc-serving", f"127.0.0.1:{fake_trino}")
