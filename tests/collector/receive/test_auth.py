"""Bearer tokens bound to tenants, on both receivers and the query API; TLS on both ports."""

from __future__ import annotations

import logging
import shutil
import ssl
import subprocess

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from otel_costs_collector.auth import AuthError, TokenAuth

from ..spans import SEMCONV, sdk_request

ACME = "acme-token-0123456789abcdef"
ADMIN = "admin-token-0123456789abcdef"
PROTO = {"Content-Type": "application/x-protobuf"}


@pytest.fixture
def tokens_file(tmp_path):
    path = tmp_path / "tokens.toml"
    path.write_text(f'[[token]]\ntoken = "{ACME}"\ntenant = "acme"\n\n[[token]]\ntoken = "{ADMIN}"\nadmin = true\n')
    return str(path)


def claimed(tenant: str) -> bytes:
    return sdk_request([dict(SEMCONV, **{"tenant.id": tenant})] * 2).SerializeToString()


def grpc_export(c, body: bytes, token: str | None):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    metadata = [("authorization", f"Bearer {token}")] if token else None
    with grpc.insecure_channel(c.grpc_target) as channel:
        return trace_service_pb2_grpc.TraceServiceStub(channel).Export(
            ExportTraceServiceRequest.FromString(body), metadata=metadata, timeout=10
        )


def tenants(c):
    return dict(c.query("SELECT tenant_id, count() FROM {db}.genai_spans GROUP BY tenant_id"))


def test_writes_need_a_token_and_are_stored_under_its_tenant(start_collector, tokens_file, caplog):
    c = start_collector(auth_tokens_file=tokens_file)
    with caplog.at_level(logging.DEBUG):
        for token in (None, "wrong-token-0123456789abcdef"):
            with pytest.raises(grpc.RpcError) as err:
                grpc_export(c, claimed("globex"), token)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            headers = {**PROTO, **({"Authorization": f"Bearer {token}"} if token else {})}
            r = httpx.post(c.http_url + "/v1/traces", content=claimed("globex"), headers=headers)
            assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
        assert tenants(c) == {}
        grpc_export(c, claimed("globex"), ACME)  # claims globex, token says acme
        r = httpx.post(
            c.http_url + "/v1/traces", content=claimed("initech"), headers={**PROTO, "Authorization": f"Bearer {ACME}"}
        )
        assert r.status_code == 200
        grpc_export(c, claimed("globex"), ADMIN)  # admin writes spans as they are
    assert tenants(c) == {"acme": 4, "globex": 2}
    assert ACME not in caplog.text and ADMIN not in caplog.text and "wrong-token" not in caplog.text


def test_queries_see_only_the_tokens_tenant(start_collector, tokens_file):
    c = start_collector(auth_tokens_file=tokens_file)
    grpc_export(c, claimed("globex"), ADMIN)
    grpc_export(c, claimed("acme"), ADMIN)
    url = c.http_url + "/v1/costs"
    assert httpx.get(url, params={"by": "tenant"}).status_code == 401
    own = httpx.get(url, params={"by": "tenant"}, headers={"Authorization": f"Bearer {ACME}"})
    assert own.status_code == 200 and [r["tenant"] for r in own.json()] == ["acme"]
    other = httpx.get(url, params={"by": "tenant", "tenant": "globex"}, headers={"Authorization": f"Bearer {ACME}"})
    assert other.status_code == 403
    everyone = httpx.get(url, params={"by": "tenant"}, headers={"Authorization": f"Bearer {ADMIN}"})
    assert sorted(r["tenant"] for r in everyone.json()) == ["acme", "globex"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "one or more"),
        ('[[token]]\ntoken = "short"\ntenant = "a"', "at least 16"),
        ('[[token]]\ntoken = "0123456789abcdefXYZ"', "either tenant"),
        ('[[token]]\ntoken = "0123456789abcdefXYZ"\ntenant = "a"\nadmin = true', "either tenant"),
        (
            '[[token]]\ntoken = "0123456789abcdefXYZ"\ntenant = "a"\n[[token]]\ntoken = "0123456789abcdefXYZ"\ntenant = "b"',  # noqa: E501
            "twice",
        ),
        ("not toml [", "cannot read"),
    ],
)
def test_bad_tokens_file(tmp_path, content, message):
    path = tmp_path / "t.toml"
    path.write_text(content)
    with pytest.raises(AuthError, match=message) as err:
        TokenAuth.load(str(path))
    assert "0123456789abcdefXYZ" not in str(err.value)


@pytest.fixture
def certificate(tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return str(cert), str(key)


def test_tls_on_both_ports(start_collector, certificate):
    cert, key = certificate
    c = start_collector(tls_cert_file=cert, tls_key_file=key)
    body = claimed("acme")
    r = httpx.post(
        f"https://127.0.0.1:{c.collector.http_port}/v1/traces",
        content=body,
        headers=PROTO,
        verify=ssl.create_default_context(cafile=cert),
    )
    assert r.status_code == 200
    with pytest.raises(httpx.TransportError):
        httpx.post(c.http_url + "/v1/traces", content=body, headers=PROTO, timeout=5)  # plain HTTP refused
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    with open(cert, "rb") as f:
        credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
    with grpc.secure_channel(c.grpc_target, credentials) as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(
            ExportTraceServiceRequest.FromString(sdk_request([dict(SEMCONV)]).SerializeToString()), timeout=10
        )
    assert c.query("SELECT count() FROM {db}.genai_spans")[0][0] == 3
