"""Real hvac 2.4.0 against the real shroud binary: response wrapping (sys/wrapping/*)."""

import time
import uuid

import hvac
import hvac.exceptions
import pytest

GONE = "wrapping token is not valid or does not exist"


def name(prefix="t"):
    return f"{prefix}-" + uuid.uuid4().hex[:8]


def paced(login, *args, **kwargs):
    """Calls a login, waiting out the server's per-IP login rate limit (docs/tokens.md)."""
    for _ in range(40):
        try:
            return login(*args, **kwargs)
        except hvac.exceptions.RateLimitExceeded:
            time.sleep(0.15)
    return login(*args, **kwargs)


def lookup(client, wrapping_token):
    # hvac 2.4.0 has no method for sys/wrapping/lookup; this is the body it would send.
    return client.adapter.post("/v1/sys/wrapping/lookup", json={"token": wrapping_token})


def wrapped_token(root, **kw):
    resp = root.auth.token.create(policies=["default"], ttl="1h", wrap_ttl="60s", **kw)
    assert resp.get("auth") is None, "a wrapped response must not carry the token in clear"
    assert resp.get("data") is None
    info = resp["wrap_info"]
    assert info["token"] and info["accessor"]
    assert info["ttl"] == 60
    assert info["creation_path"] == "auth/token/create"
    assert info["wrapped_accessor"], "a wrapped token create names the minted token's accessor"
    return info


def test_token_create_wrapped_then_unwrap_with_wrapping_token(server, root):
    info = wrapped_token(root)
    # The usual hvac way: the wrapping token is the client token, nothing in the body.
    out = hvac.Client(url=server.addr, token=info["token"]).sys.unwrap()
    auth = out["auth"]
    assert auth["accessor"] == info["wrapped_accessor"]
    assert "default" in auth["policies"]
    app = hvac.Client(url=server.addr, token=auth["client_token"])
    assert app.is_authenticated()
    assert app.auth.token.lookup_self()["data"]["accessor"] == info["wrapped_accessor"]

    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        hvac.Client(url=server.addr, token=info["token"]).sys.unwrap()
    assert GONE in str(e.value)
    # the unwrapped token keeps working after the wrapper is gone
    assert app.is_authenticated()


def test_auth_cubbyhole_logs_in_with_the_wrapped_token(server, root):
    info = wrapped_token(root)
    client = hvac.Client(url=server.addr)
    resp = client.auth_cubbyhole(info["token"])
    assert client.token == resp["auth"]["client_token"]
    assert client.token != info["token"]
    me = client.auth.token.lookup_self()["data"]
    assert me["accessor"] == info["wrapped_accessor"]
    assert me["policies"] == ["default"]
    # single use
    with pytest.raises(hvac.exceptions.VaultError):
        hvac.Client(url=server.addr).auth_cubbyhole(info["token"])


def test_third_party_unwrap_with_token_in_body(server, root):
    info = wrapped_token(root)
    # Vault's "third party" unwrap: the wrapping token in the body, the caller's own token in
    # the header; any token with the default policy may do it.
    helper = root.auth.token.create(policies=["default"], ttl="10m")["auth"]["client_token"]
    out = hvac.Client(url=server.addr, token=helper).sys.unwrap(token=info["token"])
    assert out["auth"]["accessor"] == info["wrapped_accessor"]
    assert hvac.Client(url=server.addr, token=out["auth"]["client_token"]).is_authenticated()
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        root.sys.unwrap(token=info["token"])
    assert GONE in str(e.value)


def test_body_unwrap_without_client_token_is_refused_and_does_not_consume(server, root):
    info = wrapped_token(root)
    # As in Vault, sys/wrapping/unwrap is not an unauthenticated path: the body form needs a
    # client token. The refused request must not spend the wrapping token.
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=server.addr).sys.unwrap(info["token"])
    out = hvac.Client(url=server.addr, token=info["token"]).sys.unwrap()
    assert out["auth"]["accessor"] == info["wrapped_accessor"]


def test_lookup_does_not_consume(server, root):
    info = wrapped_token(root)
    anon = hvac.Client(url=server.addr)
    for _ in range(2):
        d = lookup(anon, info["token"])["data"]
        assert d["creation_path"] == "auth/token/create"
        assert d["creation_ttl"] == 60
        assert d["creation_time"]
    root.sys.unwrap(token=info["token"])
    with pytest.raises(hvac.exceptions.InvalidRequest):
        lookup(anon, info["token"])


def test_wrapping_token_is_not_a_regular_token(server, root):
    p = name()
    root.secrets.kv.v2.create_or_update_secret(path=p, secret={"a": "b"})
    info = wrapped_token(root)
    wrapper = hvac.Client(url=server.addr, token=info["token"])
    with pytest.raises(hvac.exceptions.Forbidden):
        wrapper.secrets.kv.v2.read_secret_version(path=p, raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):
        wrapper.auth.token.create(policies=["default"])
    # and those refusals did not use it up
    assert wrapper.sys.unwrap()["auth"]["accessor"] == info["wrapped_accessor"]


def test_wrapped_secret_id_then_approle_login(server, root):
    mount = name("approle")
    root.sys.enable_auth_method(method_type="approle", path=mount)
    try:
        ar = root.auth.approle
        ar.create_or_update_approle(role_name="deploy", token_policies=["default"], mount_point=mount)
        role_id = ar.read_role_id(role_name="deploy", mount_point=mount)["data"]["role_id"]
        resp = ar.generate_secret_id(role_name="deploy", wrap_ttl="60s", mount_point=mount)
        assert resp.get("data") is None
        info = resp["wrap_info"]
        assert info["creation_path"] == f"auth/{mount}/role/deploy/secret-id"
        assert lookup(hvac.Client(url=server.addr), info["token"])["data"]["creation_path"] == info["creation_path"]

        data = hvac.Client(url=server.addr, token=info["token"]).sys.unwrap()["data"]
        assert data["secret_id"] and data["secret_id_accessor"]
        assert data["secret_id_accessor"] in ar.list_secret_id_accessors(role_name="deploy", mount_point=mount)["data"]["keys"]

        client = hvac.Client(url=server.addr)
        paced(client.auth.approle.login, role_id=role_id, secret_id=data["secret_id"], mount_point=mount)
        assert client.is_authenticated()
        with pytest.raises(hvac.exceptions.VaultError):
            hvac.Client(url=server.addr, token=info["token"]).sys.unwrap()
    finally:
        root.sys.disable_auth_method(path=mount)


def test_sys_wrap_and_unwrap_payload(server, root):
    payload = {"db_password": "hunter2", "nested": {"list": [1, 2, 3]}}
    resp = root.sys.wrap(payload=payload, ttl=120)
    info = resp["wrap_info"]
    assert info["ttl"] == 120
    assert info["creation_path"] == "sys/wrapping/wrap"
    assert "hunter2" not in str(resp)
    d = lookup(hvac.Client(url=server.addr), info["token"])["data"]
    assert d["creation_ttl"] == 120 and d["creation_path"] == "sys/wrapping/wrap"
    out = hvac.Client(url=server.addr, token=info["token"]).sys.unwrap()
    assert out["data"] == payload


def test_wrapped_kv_read(server, root):
    p = name()
    root.secrets.kv.v2.create_or_update_secret(path=p, secret={"api_key": "k-123"})
    # hvac's kv methods take no wrap_ttl; its adapter does (as read_secret_version would send it).
    resp = root.adapter.get(f"/v1/secret/data/{p}", wrap_ttl="30s")
    assert resp["data"] is None and "k-123" not in str(resp)
    assert resp["wrap_info"]["creation_path"] == f"secret/data/{p}"
    out = hvac.Client(url=server.addr, token=resp["wrap_info"]["token"]).sys.unwrap()
    assert out["data"]["data"] == {"api_key": "k-123"}
    assert out["data"]["metadata"]["version"] == 1


def test_errors_are_not_wrapped(root):
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.adapter.get(f"/v1/secret/data/{name()}", wrap_ttl="30s")


def test_rewrap_moves_response_to_new_token(server, root):
    resp = root.sys.wrap(payload={"v": "moved"}, ttl=60)
    old = resp["wrap_info"]["token"]
    # hvac 2.4.0 has no rewrap method; this is the documented body.
    new = root.adapter.post("/v1/sys/wrapping/rewrap", json={"token": old})["wrap_info"]
    assert new["token"] != old
    assert new["ttl"] == 60
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        root.sys.unwrap(token=old)
    assert GONE in str(e.value)
    assert hvac.Client(url=server.addr, token=new["token"]).sys.unwrap()["data"] == {"v": "moved"}


def test_expired_wrapping_token_is_refused(server, root):
    resp = root.sys.wrap(payload={"v": "short-lived"}, ttl="1s")
    tok = resp["wrap_info"]["token"]
    assert resp["wrap_info"]["ttl"] == 1
    time.sleep(2.2)
    with pytest.raises(hvac.exceptions.VaultError):
        lookup(hvac.Client(url=server.addr), tok)
    with pytest.raises(hvac.exceptions.VaultError):
        root.sys.unwrap(token=tok)
    with pytest.raises(hvac.exceptions.VaultError):
        hvac.Client(url=server.addr, token=tok).sys.unwrap()
