"""TLS and mTLS on the real server: certificates made here with `cryptography`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from serving.client import MarketDataClient, Tls
from serving.pb import pb
from tests.serving.conftest import TOKEN

pytestmark = pytest.mark.integration


def _cert(
    name: str, issuer: tuple | None, path: Path, *, ca: bool = False, san: str | None = None
) -> tuple:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
    cert = b.sign(issuer_key, hashes.SHA256())
    (path / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (path / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


@pytest.fixture
def pki(tmp_path):
    ca = _cert("ca", None, tmp_path, ca=True)
    _cert("server", ca, tmp_path, san="localhost")
    _cert("client", ca, tmp_path)
    other_ca = _cert("otherca", None, tmp_path, ca=True)
    _cert("stranger", other_ca, tmp_path)
    return tmp_path


async def _list(target: str, tls: Tls) -> object:
    async with MarketDataClient(target, token=TOKEN, tls=tls) as client:
        return await client.list_symbols(timeout=10)


async def test_tls_and_mtls(server_factory, pki):
    p = lambda n: str(pki / n)  # noqa: E731
    _, port = await server_factory(tls_cert=p("server.pem"), tls_key=p("server.key"))
    target = f"127.0.0.1:{port}"
    resp = await _list(target, Tls(root_ca=p("ca.pem"), server_name="localhost"))
    assert isinstance(resp, pb.ListSymbolsResponse)
    with pytest.raises(grpc.aio.AioRpcError) as err:  # plaintext to a TLS port
        async with MarketDataClient(target, token=TOKEN) as client:
            await client.list_symbols(timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE

    _, port = await server_factory(
        tls_cert=p("server.pem"), tls_key=p("server.key"), tls_client_ca=p("ca.pem")
    )
    target = f"127.0.0.1:{port}"
    ok = Tls(
        root_ca=p("ca.pem"),
        client_cert=p("client.pem"),
        client_key=p("client.key"),
        server_name="localhost",
    )
    assert isinstance(await _list(target, ok), pb.ListSymbolsResponse)
    for bad in (
        Tls(root_ca=p("ca.pem"), server_name="localhost"),  # no client certificate
        Tls(
            root_ca=p("ca.pem"),
            client_cert=p("stranger.pem"),
            client_key=p("stranger.key"),
            server_name="localhost",
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _list(target, bad)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
