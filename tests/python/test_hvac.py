"""Real hvac 2.4.0 against the real shroud binary: KV v2, tokens, policies, sys."""

import uuid

import hvac
import hvac.exceptions
import pytest


def name():
    return "t-" + uuid.uuid4().hex[:8]


def test_health_and_seal_status(server, root):
    h = root.sys.read_health_status(method="GET")
    assert h["initialized"] is True and h["sealed"] is False
    assert root.sys.is_initialized()
    assert not root.sys.is_sealed()
    st = root.sys.read_seal_status()
    assert st["sealed"] is False and st["t"] == 1 and st["n"] == 1
    # HEAD is hvac's default for health
    resp = root.sys.read_health_status()
    assert resp.status_code == 200


def test_kv2_write_read_versions(root):
    p = name()
    r = root.secrets.kv.v2.create_or_update_secret(path=p, secret={"password": "s3cr3t"})
    assert r["data"]["version"] == 1
    root.secrets.kv.v2.create_or_update_secret(path=p, secret={"password": "two"})
    cur = root.secrets.kv.v2.read_secret_version(path=p, raise_on_deleted_version=True)
    assert cur["data"]["data"] == {"password": "two"}
    assert cur["data"]["metadata"]["version"] == 2
    v1 = root.secrets.kv.v2.read_secret_version(path=p, version=1, raise_on_deleted_version=True)
    assert v1["data"]["data"] == {"password": "s3cr3t"}
    meta = root.secrets.kv.v2.read_secret_metadata(path=p)
    assert meta["data"]["current_version"] == 2
    assert set(meta["data"]["versions"]) == {"1", "2"}


def test_kv2_cas(root):
    p = name()
    root.secrets.kv.v2.create_or_update_secret(path=p, secret={"a": "1"}, cas=0)
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        root.secrets.kv.v2.create_or_update_secret(path=p, secret={"a": "2"}, cas=0)
    assert "check-and-set" in str(e.value)
    root.secrets.kv.v2.create_or_update_secret(path=p, secret={"a": "2"}, cas=1)


def test_kv2_patch(root):
    p = name()
    root.secrets.kv.v2.create_or_update_secret(path=p, secret={"a": "1", "b": "2"})
    root.secrets.kv.v2.patch(path=p, secret={"b": "3", "c": "4"})
    r = root.secrets.kv.v2.read_secret_version(path=p, raise_on_deleted_version=True)
    assert r["data"]["data"] == {"a": "1", "b": "3", "c": "4"}
    assert r["data"]["metadata"]["version"] == 2


def test_kv2_delete_undelete_destroy(root):
    p = name()
    kv = root.secrets.kv.v2
    kv.create_or_update_secret(path=p, secret={"v": "1"})
    kv.create_or_update_secret(path=p, secret={"v": "2"})
    kv.delete_latest_version_of_secret(path=p)
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version(path=p, raise_on_deleted_version=True)
    deleted = kv.read_secret_version(path=p, raise_on_deleted_version=False)
    assert deleted["data"]["metadata"]["deletion_time"] != ""
    kv.undelete_secret_versions(path=p, versions=[2])
    assert kv.read_secret_version(path=p, raise_on_deleted_version=True)["data"]["data"] == {"v": "2"}
    kv.delete_secret_versions(path=p, versions=[1])
    kv.destroy_secret_versions(path=p, versions=[2])
    meta = kv.read_secret_metadata(path=p)["data"]
    assert meta["versions"]["2"]["destroyed"] is True
    assert meta["versions"]["1"]["deletion_time"] != ""
    kv.delete_metadata_and_all_versions(path=p)
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_metadata(path=p)


def test_kv2_list_and_metadata(root):
    base = name()
    kv = root.secrets.kv.v2
    for k in ("a", "b/c"):
        kv.create_or_update_secret(path=f"{base}/{k}", secret={"x": "y"})
    assert kv.list_secrets(path=base)["data"]["keys"] == ["a", "b/"]
    # the Go client / CLI form
    assert root.list(f"secret/metadata/{base}")["data"]["keys"] == ["a", "b/"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.list_secrets(path=name())
    kv.update_metadata(path=f"{base}/a", max_versions=3, custom_metadata={"owner": "team-a"})
    meta = kv.read_secret_metadata(path=f"{base}/a")["data"]
    assert meta["max_versions"] == 3
    assert meta["custom_metadata"] == {"owner": "team-a"}
    kv.configure(max_versions=7)
    assert kv.read_configuration()["data"]["max_versions"] == 7
    kv.configure(max_versions=0)


def test_mount_management(root):
    path = name()
    root.sys.enable_secrets_engine(backend_type="kv", path=path, options={"version": "2"})
    mounts = root.sys.list_mounted_secrets_engines()["data"]
    assert mounts[path + "/"]["options"]["version"] == "2"
    root.secrets.kv.v2.create_or_update_secret(path="x", secret={"a": "b"}, mount_point=path)
    assert root.secrets.kv.v2.read_secret_version(path="x", mount_point=path, raise_on_deleted_version=True)["data"]["data"] == {"a": "b"}
    root.sys.disable_secrets_engine(path=path)
    assert path + "/" not in root.sys.list_mounted_secrets_engines()["data"]


def test_token_create_lookup_renew_revoke(server, root):
    t = root.auth.token.create(policies=["default"], ttl="1h", renewable=True)
    tok = t["auth"]["client_token"]
    acc = t["auth"]["accessor"]
    assert t["auth"]["lease_duration"] == 3600
    c = hvac.Client(url=server.addr, token=tok)
    assert c.is_authenticated()
    me = c.auth.token.lookup_self()["data"]
    assert me["accessor"] == acc and me["policies"] == ["default"]
    assert root.auth.token.lookup(tok)["data"]["id"] == tok
    assert root.auth.token.lookup_accessor(acc)["data"]["id"] == ""
    r = c.auth.token.renew_self(increment="2h")
    assert r["auth"]["lease_duration"] == 7200
    root.auth.token.renew(tok, increment="30m")
    child = c.auth.token.create(policies=["default"], ttl="10m") if False else None
    root.auth.token.revoke_accessor(acc)
    assert not c.is_authenticated()


def test_token_revoke_self_and_orphan(server, root):
    t = root.auth.token.create(policies=["default"], ttl="1h")["auth"]["client_token"]
    o = root.auth.token.create_orphan(policies=["default"], ttl="1h")["auth"]
    assert o["orphan"] is True
    c = hvac.Client(url=server.addr, token=t)
    c.auth.token.revoke_self()
    assert not c.is_authenticated()
    root.auth.token.revoke(o["client_token"])
    assert not hvac.Client(url=server.addr, token=o["client_token"]).is_authenticated()


def test_policies_confine_an_app_token(server, root):
    app = name()
    root.secrets.kv.v2.create_or_update_secret(path=f"{app}/db", secret={"password": "pw"})
    root.secrets.kv.v2.create_or_update_secret(path=f"other-{app}/db", secret={"password": "no"})
    rules = f'path "secret/data/{app}/*" {{ capabilities = ["read"] }}\npath "secret/metadata/{app}/*" {{ capabilities = ["list"] }}'
    root.sys.create_or_update_policy(name=app, policy=rules)
    assert root.sys.read_policy(name=app)["data"]["rules"] == rules
    assert app in root.sys.list_policies()["data"]["policies"]
    root.sys.create_or_update_acl_policy(name=app + "-acl", policy=rules)
    assert root.sys.read_acl_policy(name=app + "-acl")["data"]["policy"] == rules
    assert app + "-acl" in root.sys.list_acl_policies()["data"]["keys"]
    tok = root.auth.token.create(policies=[app], ttl="1h")["auth"]["client_token"]
    c = hvac.Client(url=server.addr, token=tok)
    got = c.secrets.kv.v2.read_secret_version(path=f"{app}/db", raise_on_deleted_version=True)
    assert got["data"]["data"] == {"password": "pw"}
    with pytest.raises(hvac.exceptions.Forbidden):
        c.secrets.kv.v2.read_secret_version(path=f"other-{app}/db", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):
        c.secrets.kv.v2.create_or_update_secret(path=f"{app}/db", secret={"password": "x"})
    with pytest.raises(hvac.exceptions.Forbidden):
        c.sys.create_or_update_policy(name=app, policy='path "*" { capabilities = ["sudo"] }')
    with pytest.raises(hvac.exceptions.Forbidden):
        c.sys.list_mounted_secrets_engines()
    root.sys.delete_policy(name=app)
    root.sys.delete_acl_policy(name=app + "-acl")
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.sys.read_policy(name=app)


def test_audit_device_via_hvac(root, tmp_path):
    log = tmp_path / "audit.log"
    root.sys.enable_audit_device(device_type="file", path="pyaudit", options={"file_path": str(log)})
    try:
        assert "pyaudit/" in root.sys.list_enabled_audit_devices()["data"]
        root.secrets.kv.v2.create_or_update_secret(path=name(), secret={"k": "AuditedValue123"})
        h = root.sys.calculate_hash(path="pyaudit", input_to_hash="AuditedValue123")["data"]["hash"]
        text = log.read_text()
        assert "AuditedValue123" not in text
        assert h in text
    finally:
        root.sys.disable_audit_device(path="pyaudit")


def test_bad_token_is_forbidden(server):
    c = hvac.Client(url=server.addr, token="hvs.not-a-token")
    assert not c.is_authenticated()
    with pytest.raises(hvac.exceptions.Forbidden):
        c.secrets.kv.v2.read_secret_version(path="x", raise_on_deleted_version=True)
