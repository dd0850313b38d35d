"""Real hvac 2.4.0 against the real shroud binary: AppRole, Kubernetes and JWT logins."""

import base64
import datetime
import hashlib
import hmac
import json
import time
import uuid

import hvac
import hvac.exceptions
import jwt as pyjwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID


def name(prefix="t"):
    return f"{prefix}-" + uuid.uuid4().hex[:8]


def paced(login, *args, **kwargs):
    """Calls a login method, waiting out the server's per-IP login rate limit (a bucket of 20
    refilling at 10/s, docs/tokens.md): the whole suite logs in from 127.0.0.1. Any other
    outcome, success or error, is returned or raised as is."""
    for _ in range(40):
        try:
            return login(*args, **kwargs)
        except hvac.exceptions.RateLimitExceeded:
            time.sleep(0.15)
    return login(*args, **kwargs)


def public_pem(private_key) -> str:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def self_signed_cert_pem(private_key) -> str:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "service-accounts")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(private_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def kv_app(root, app):
    """A KV secret the app may read, one it may not, and a policy for the first."""
    root.secrets.kv.v2.create_or_update_secret(path=f"{app}/db", secret={"password": "app-pw"})
    root.secrets.kv.v2.create_or_update_secret(path=f"not-{app}/db", secret={"password": "other"})
    root.sys.create_or_update_policy(name=app, policy=f'path "secret/data/{app}/*" {{ capabilities = ["read"] }}')


def assert_confined(client, app):
    got = client.secrets.kv.v2.read_secret_version(path=f"{app}/db", raise_on_deleted_version=True)
    assert got["data"]["data"] == {"password": "app-pw"}
    with pytest.raises(hvac.exceptions.Forbidden):
        client.secrets.kv.v2.read_secret_version(path=f"not-{app}/db", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):
        client.secrets.kv.v2.create_or_update_secret(path=f"{app}/db", secret={"password": "x"})


# ---------------------------------------------------------------------------------------- AppRole


@pytest.fixture
def approle(root):
    mount = name("approle")
    root.sys.enable_auth_method(method_type="approle", path=mount)
    yield mount
    root.sys.disable_auth_method(path=mount)


def test_approle_login_confines_client_to_role_policy(server, root, approle):
    app = name("app")
    kv_app(root, app)
    ar = root.auth.approle
    # token_policies as a list: hvac sends it comma-joined ("a,b")
    ar.create_or_update_approle(role_name=app, token_policies=[app, "default"], token_ttl="1h", mount_point=approle)
    role = ar.read_role(role_name=app, mount_point=approle)["data"]
    assert sorted(role["token_policies"]) == sorted([app, "default"])
    assert role["bind_secret_id"] is True
    assert app in ar.list_roles(mount_point=approle)["data"]["keys"]

    role_id = ar.read_role_id(role_name=app, mount_point=approle)["data"]["role_id"]
    sid = ar.generate_secret_id(role_name=app, metadata={"host": "web-1"}, mount_point=approle)["data"]
    assert sid["secret_id"] and sid["secret_id_accessor"]

    client = hvac.Client(url=server.addr)
    resp = paced(client.auth.approle.login, role_id=role_id, secret_id=sid["secret_id"], use_token=True, mount_point=approle)
    auth = resp["auth"]
    assert client.token == auth["client_token"]
    assert sorted(auth["policies"]) == sorted([app, "default"])
    assert auth["metadata"]["role_name"] == app
    assert auth["metadata"]["host"] == "web-1"
    assert auth["lease_duration"] == 3600
    assert client.is_authenticated()
    assert_confined(client, app)


def test_approle_wrong_secret_id_is_refused(server, root, approle):
    ar = root.auth.approle
    ar.create_or_update_approle(role_name="r1", token_policies=["default"], mount_point=approle)
    role_id = ar.read_role_id(role_name="r1", mount_point=approle)["data"]["role_id"]
    ar.generate_secret_id(role_name="r1", mount_point=approle)
    client = hvac.Client(url=server.addr)
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        paced(client.auth.approle.login, role_id=role_id, secret_id=str(uuid.uuid4()), mount_point=approle)
    assert "invalid role or secret ID" in str(e.value)
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        paced(client.auth.approle.login, role_id=str(uuid.uuid4()), secret_id=str(uuid.uuid4()), mount_point=approle)
    assert "invalid role or secret ID" in str(e.value)
    assert client.token is None


def test_approle_secret_id_num_uses_exhausted(server, root, approle):
    ar = root.auth.approle
    ar.create_or_update_approle(role_name="once", token_policies=["default"], secret_id_num_uses=2, mount_point=approle)
    role_id = ar.read_role_id(role_name="once", mount_point=approle)["data"]["role_id"]
    sid = ar.generate_secret_id(role_name="once", mount_point=approle)["data"]
    assert sid["secret_id_num_uses"] == 2
    looked = ar.read_secret_id(role_name="once", secret_id=sid["secret_id"], mount_point=approle)["data"]
    assert looked["secret_id_num_uses"] == 2
    client = hvac.Client(url=server.addr)
    for _ in range(2):
        paced(client.auth.approle.login, role_id=role_id, secret_id=sid["secret_id"], mount_point=approle)
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        paced(client.auth.approle.login, role_id=role_id, secret_id=sid["secret_id"], mount_point=approle)
    assert "invalid role or secret ID" in str(e.value)
    # the last use removed the secret ID and its accessor
    keys = _accessor_keys(ar, "once", approle)
    assert sid["secret_id_accessor"] not in keys


def _accessor_keys(ar, role, mount):
    try:
        return ar.list_secret_id_accessors(role_name=role, mount_point=mount)["data"]["keys"]
    except hvac.exceptions.InvalidPath:
        return []


def test_approle_destroy_secret_id_and_list_accessors(server, root, approle):
    ar = root.auth.approle
    ar.create_or_update_approle(role_name="svc", token_policies=["default"], mount_point=approle)
    role_id = ar.read_role_id(role_name="svc", mount_point=approle)["data"]["role_id"]
    a = ar.generate_secret_id(role_name="svc", mount_point=approle)["data"]
    b = ar.generate_secret_id(role_name="svc", mount_point=approle)["data"]
    keys = ar.list_secret_id_accessors(role_name="svc", mount_point=approle)["data"]["keys"]
    assert sorted(keys) == sorted([a["secret_id_accessor"], b["secret_id_accessor"]])

    ar.destroy_secret_id(role_name="svc", secret_id=a["secret_id"], mount_point=approle)
    assert _accessor_keys(ar, "svc", approle) == [b["secret_id_accessor"]]
    client = hvac.Client(url=server.addr)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        paced(client.auth.approle.login, role_id=role_id, secret_id=a["secret_id"], mount_point=approle)
    paced(client.auth.approle.login, role_id=role_id, secret_id=b["secret_id"], mount_point=approle)
    assert client.is_authenticated()

    ar.destroy_secret_id_accessor(role_name="svc", secret_id_accessor=b["secret_id_accessor"], mount_point=approle)
    assert _accessor_keys(ar, "svc", approle) == []
    with pytest.raises(hvac.exceptions.InvalidRequest):
        paced(hvac.Client(url=server.addr).auth.approle.login, role_id=role_id, secret_id=b["secret_id"], mount_point=approle)


def test_approle_custom_secret_id_and_role_id(server, root, approle):
    ar = root.auth.approle
    ar.create_or_update_approle(role_name="custom", token_policies=["default"], mount_point=approle)
    ar.update_role_id(role_name="custom", role_id="my-fixed-role-id", mount_point=approle)
    assert ar.read_role_id(role_name="custom", mount_point=approle)["data"]["role_id"] == "my-fixed-role-id"
    ar.create_custom_secret_id(role_name="custom", secret_id="my-custom-secret-0123456789", mount_point=approle)
    client = hvac.Client(url=server.addr)
    paced(client.auth.approle.login, role_id="my-fixed-role-id", secret_id="my-custom-secret-0123456789", mount_point=approle)
    assert client.is_authenticated()


def test_approle_deleted_role_cannot_log_in(server, root, approle):
    ar = root.auth.approle
    ar.create_or_update_approle(role_name="gone", token_policies=["default"], mount_point=approle)
    role_id = ar.read_role_id(role_name="gone", mount_point=approle)["data"]["role_id"]
    sid = ar.generate_secret_id(role_name="gone", mount_point=approle)["data"]["secret_id"]
    ar.delete_role(role_name="gone", mount_point=approle)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        paced(hvac.Client(url=server.addr).auth.approle.login, role_id=role_id, secret_id=sid, mount_point=approle)


# ------------------------------------------------------------------------------------- Kubernetes


def sa_token(key, namespace="prod", sa="app", exp_in=600, alg="ES256", **extra):
    """A legacy (secret-based) service-account JWT, signed like kube-apiserver signs them."""
    now = int(time.time())
    claims = {
        "iss": "kubernetes/serviceaccount",
        "kubernetes.io/serviceaccount/namespace": namespace,
        "kubernetes.io/serviceaccount/secret.name": f"{sa}-token-x7k2p",
        "kubernetes.io/serviceaccount/service-account.name": sa,
        "kubernetes.io/serviceaccount/service-account.uid": "5b6e1c2a-0d5f-4c3e-9a44-3c1f0e2b7d11",
        "sub": f"system:serviceaccount:{namespace}:{sa}",
        "iat": now - 5,
        "exp": now + exp_in,
    }
    claims.update(extra)
    return pyjwt.encode(claims, key, algorithm=alg, headers={"kid": "k8s-sa-key"})


def projected_sa_token(key, namespace="prod", sa="app", aud=("https://kubernetes.default.svc",)):
    now = int(time.time())
    claims = {
        "aud": list(aud),
        "iss": "https://kubernetes.default.svc.cluster.local",
        "iat": now - 5,
        "nbf": now - 5,
        "exp": now + 600,
        "sub": f"system:serviceaccount:{namespace}:{sa}",
        "kubernetes.io": {
            "namespace": namespace,
            "pod": {"name": "app-7d9f8", "uid": "0a9b6d2e-1111-2222-3333-444455556666"},
            "serviceaccount": {"name": sa, "uid": "77e0c7b4-aaaa-bbbb-cccc-ddddeeeeffff"},
        },
    }
    return pyjwt.encode(claims, key, algorithm="ES256")


@pytest.fixture(scope="module")
def sa_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def k8s(root, sa_key):
    mount = name("k8s")
    root.sys.enable_auth_method(method_type="kubernetes", path=mount)
    app = name("app")
    kv_app(root, app)
    yield mount, app
    root.sys.disable_auth_method(path=mount)


def _k8s_role(root, mount, app, **kw):
    root.auth.kubernetes.create_role(
        name="app",
        bound_service_account_names=["app"],
        bound_service_account_namespaces=["prod"],
        policies=[app],
        ttl="1h",
        mount_point=mount,
        **kw,
    )


def test_kubernetes_configure_with_certificate_as_hvac_requires(root, sa_key, k8s):
    """hvac 2.4.0 only lets `pem_keys` through if every entry is a `CERTIFICATE` PEM
    (hvac.utils.validate_pem_format); Vault extracts the public key from a certificate."""
    mount, _ = k8s
    with pytest.raises(hvac.exceptions.ParamValidationError):
        root.auth.kubernetes.configure(kubernetes_host="https://k8s.example:6443", pem_keys=[public_pem(sa_key)], mount_point=mount)
    root.auth.kubernetes.configure(
        kubernetes_host="https://k8s.example:6443", pem_keys=[self_signed_cert_pem(sa_key)], mount_point=mount
    )
    cfg = root.auth.kubernetes.read_config(mount_point=mount)
    assert cfg["kubernetes_host"] == "https://k8s.example:6443"


def _configure_public_key(root, mount, key):
    # hvac's configure() refuses a bare PUBLIC KEY PEM client-side (see the test above), so the
    # body hvac would send is posted through hvac's adapter.
    root.adapter.post(
        f"/v1/auth/{mount}/config",
        json={"kubernetes_host": "https://k8s.example:6443", "disable_local_ca_jwt": False, "pem_keys": [public_pem(key)]},
    )


def test_kubernetes_login_with_sa_token(server, root, sa_key, k8s):
    mount, app = k8s
    _configure_public_key(root, mount, sa_key)
    _k8s_role(root, mount, app)
    role = root.auth.kubernetes.read_role(name="app", mount_point=mount)
    assert role["bound_service_account_names"] == ["app"]
    assert role["bound_service_account_namespaces"] == ["prod"]
    assert "app" in root.auth.kubernetes.list_roles(mount_point=mount)["keys"]

    client = hvac.Client(url=server.addr)
    resp = paced(client.auth.kubernetes.login, role="app", jwt=sa_token(sa_key), mount_point=mount)
    meta = resp["auth"]["metadata"]
    assert meta["service_account_name"] == "app"
    assert meta["service_account_namespace"] == "prod"
    assert meta["service_account_uid"] == "5b6e1c2a-0d5f-4c3e-9a44-3c1f0e2b7d11"
    assert meta["service_account_secret_name"] == "app-token-x7k2p"
    assert meta["role"] == "app"
    assert app in resp["auth"]["policies"]
    assert client.token == resp["auth"]["client_token"]
    assert_confined(client, app)


def test_kubernetes_login_with_certificate_config(server, root, sa_key, k8s):
    mount, app = k8s
    root.auth.kubernetes.configure(
        kubernetes_host="https://k8s.example:6443", pem_keys=[self_signed_cert_pem(sa_key)], mount_point=mount
    )
    _k8s_role(root, mount, app)
    client = hvac.Client(url=server.addr)
    paced(client.auth.kubernetes.login, role="app", jwt=sa_token(sa_key), mount_point=mount)
    assert_confined(client, app)


def test_kubernetes_projected_token_and_audience(server, root, sa_key, k8s):
    mount, app = k8s
    _configure_public_key(root, mount, sa_key)
    _k8s_role(root, mount, app, audience="vault")
    client = hvac.Client(url=server.addr)
    with pytest.raises(hvac.exceptions.Forbidden):
        paced(client.auth.kubernetes.login, role="app", jwt=projected_sa_token(sa_key), mount_point=mount)
    resp = paced(client.auth.kubernetes.login, role="app", jwt=projected_sa_token(sa_key, aud=["vault"]), mount_point=mount)
    meta = resp["auth"]["metadata"]
    assert meta["service_account_name"] == "app" and meta["service_account_namespace"] == "prod"
    assert meta["service_account_uid"] == "77e0c7b4-aaaa-bbbb-cccc-ddddeeeeffff"
    assert_confined(client, app)


def test_kubernetes_login_with_rsa_signed_token(server, root, k8s):
    """kube-apiserver usually signs with RSA (RS256)."""
    mount, app = k8s
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _configure_public_key(root, mount, key)
    _k8s_role(root, mount, app)
    client = hvac.Client(url=server.addr)
    resp = paced(client.auth.kubernetes.login, role="app", jwt=sa_token(key, alg="RS256"), mount_point=mount)
    assert resp["auth"]["metadata"]["service_account_name"] == "app"
    assert_confined(client, app)


def test_kubernetes_wrong_namespace_is_refused(server, root, sa_key, k8s):
    mount, app = k8s
    _configure_public_key(root, mount, sa_key)
    _k8s_role(root, mount, app)
    client = hvac.Client(url=server.addr)
    with pytest.raises(hvac.exceptions.Forbidden) as e:
        paced(client.auth.kubernetes.login, role="app", jwt=sa_token(sa_key, namespace="staging"), mount_point=mount)
    assert "namespace not authorized" in str(e.value)
    with pytest.raises(hvac.exceptions.Forbidden):
        paced(client.auth.kubernetes.login, role="app", jwt=sa_token(sa_key, sa="intruder"), mount_point=mount)
    assert client.token is None


def test_kubernetes_expired_token_is_refused(server, root, sa_key, k8s):
    mount, app = k8s
    _configure_public_key(root, mount, sa_key)
    _k8s_role(root, mount, app)
    client = hvac.Client(url=server.addr)
    with pytest.raises(hvac.exceptions.Forbidden) as e:
        paced(client.auth.kubernetes.login, role="app", jwt=sa_token(sa_key, exp_in=-3600), mount_point=mount)
    assert "expired" in str(e.value)


def test_kubernetes_token_from_another_key_is_refused(server, root, sa_key, k8s):
    mount, app = k8s
    _configure_public_key(root, mount, sa_key)
    _k8s_role(root, mount, app)
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(hvac.exceptions.Forbidden) as e:
        paced(hvac.Client(url=server.addr).auth.kubernetes.login, role="app", jwt=sa_token(other), mount_point=mount)
    assert "permission denied" in str(e.value)


def test_kubernetes_unknown_role_is_refused(server, root, sa_key, k8s):
    mount, app = k8s
    _configure_public_key(root, mount, sa_key)
    _k8s_role(root, mount, app)
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        paced(hvac.Client(url=server.addr).auth.kubernetes.login, role="nope", jwt=sa_token(sa_key), mount_point=mount)
    assert "invalid role name" in str(e.value)


# -------------------------------------------------------------------------------------------- JWT

ISSUER = "https://ci.example.test"


@pytest.fixture(scope="module")
def jwt_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwt_mount(root, jwt_key):
    mount = name("jwt")
    root.sys.enable_auth_method(method_type="jwt", path=mount)
    root.auth.jwt.configure(jwt_validation_pubkeys=[public_pem(jwt_key)], bound_issuer=ISSUER, path=mount)
    app = name("app")
    kv_app(root, app)
    root.auth.jwt.create_role(
        name="ci",
        role_type="jwt",
        user_claim="sub",
        allowed_redirect_uris=["http://localhost:8250/oidc/callback"],
        bound_audiences=["shroud-ci"],
        claim_mappings={"repository": "repo"},
        token_policies=[app],
        token_ttl="30m",
        path=mount,
    )
    yield mount, app
    root.sys.disable_auth_method(path=mount)


def ci_jwt(key, alg="RS256", **over):
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "repo:acme/web:ref:refs/heads/main", "aud": "shroud-ci",
              "repository": "acme/web", "iat": now - 5, "nbf": now - 5, "exp": now + 300}
    claims.update(over)
    claims = {k: v for k, v in claims.items() if v is not None}
    return pyjwt.encode(claims, key, algorithm=alg)


def test_jwt_config_and_role_read_back(root, jwt_key, jwt_mount):
    mount, app = jwt_mount
    cfg = root.auth.jwt.read_config(path=mount)["data"]
    assert cfg["bound_issuer"] == ISSUER
    assert [p.strip() for p in cfg["jwt_validation_pubkeys"]] == [public_pem(jwt_key).strip()]
    role = root.auth.jwt.read_role(name="ci", path=mount)["data"]
    assert role["bound_audiences"] == ["shroud-ci"]
    assert role["user_claim"] == "sub"
    assert role["token_policies"] == [app]
    assert "ci" in root.auth.jwt.list_roles(path=mount)["data"]["keys"]


def test_jwt_login(server, jwt_key, jwt_mount):
    mount, app = jwt_mount
    client = hvac.Client(url=server.addr)
    resp = paced(client.auth.jwt.jwt_login, role="ci", jwt=ci_jwt(jwt_key), path=mount)
    auth = resp["auth"]
    assert client.token == auth["client_token"]
    assert app in auth["policies"]
    assert auth["metadata"]["role"] == "ci"
    assert auth["metadata"]["repo"] == "acme/web"
    assert auth["lease_duration"] == 1800
    me = client.auth.token.lookup_self()["data"]
    assert me["display_name"] == "jwt-repo:acme/web:ref:refs/heads/main"
    assert_confined(client, app)


def test_jwt_wrong_audience_is_refused(server, jwt_key, jwt_mount):
    mount, _ = jwt_mount
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        paced(hvac.Client(url=server.addr).auth.jwt.jwt_login, role="ci", jwt=ci_jwt(jwt_key, aud="someone-else"), path=mount)
    assert "error validating claims" in str(e.value)


def test_jwt_wrong_issuer_is_refused(server, jwt_key, jwt_mount):
    mount, _ = jwt_mount
    with pytest.raises(hvac.exceptions.InvalidRequest):
        paced(hvac.Client(url=server.addr).auth.jwt.jwt_login, role="ci", jwt=ci_jwt(jwt_key, iss="https://evil.test"), path=mount)


def test_jwt_expired_token_is_refused(server, jwt_key, jwt_mount):
    mount, _ = jwt_mount
    now = int(time.time())
    token = ci_jwt(jwt_key, iat=now - 7200, nbf=now - 7200, exp=now - 3600)
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        paced(hvac.Client(url=server.addr).auth.jwt.jwt_login, role="ci", jwt=token, path=mount)
    assert "error validating claims" in str(e.value) or "expired" in str(e.value)


def test_jwt_missing_exp_is_refused(server, jwt_key, jwt_mount):
    mount, _ = jwt_mount
    with pytest.raises(hvac.exceptions.InvalidRequest):
        paced(hvac.Client(url=server.addr).auth.jwt.jwt_login, role="ci", jwt=ci_jwt(jwt_key, exp=None), path=mount)


def test_jwt_signed_by_unknown_key_is_refused(server, jwt_mount):
    mount, _ = jwt_mount
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        paced(hvac.Client(url=server.addr).auth.jwt.jwt_login, role="ci", jwt=ci_jwt(other), path=mount)
    assert "no known key successfully validated the token signature" in str(e.value)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_jwt_hs256_with_public_key_as_secret_is_refused(server, jwt_key, jwt_mount):
    """The algorithm-confusion attack: an HMAC "signed" with the server's public key."""
    mount, _ = jwt_mount
    now = int(time.time())
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps({"iss": ISSUER, "sub": "attacker", "aud": "shroud-ci", "exp": now + 300}).encode())
    signing_input = f"{header}.{payload}".encode()
    sig = _b64url(hmac.new(public_pem(jwt_key).encode(), signing_input, hashlib.sha256).digest())
    with pytest.raises(hvac.exceptions.InvalidRequest):
        paced(hvac.Client(url=server.addr).auth.jwt.jwt_login, role="ci", jwt=f"{header}.{payload}.{sig}", path=mount)
    unsigned = f"{_b64url(json.dumps({'alg': 'none'}).encode())}.{payload}."
    with pytest.raises(hvac.exceptions.InvalidRequest):
        paced(hvac.Client(url=server.addr).auth.jwt.jwt_login, role="ci", jwt=unsigned, path=mount)


def test_jwt_unknown_role_is_refused(server, jwt_key, jwt_mount):
    mount, _ = jwt_mount
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        paced(hvac.Client(url=server.addr).auth.jwt.jwt_login, role="nope", jwt=ci_jwt(jwt_key), path=mount)
    assert 'role "nope" could not be found' in str(e.value)


def test_jwt_ed25519_key(server, root):
    key = ed25519.Ed25519PrivateKey.generate()
    mount = name("jwt")
    root.sys.enable_auth_method(method_type="jwt", path=mount)
    try:
        root.auth.jwt.configure(jwt_validation_pubkeys=[public_pem(key)], bound_issuer=ISSUER, path=mount)
        root.auth.jwt.create_role(
            name="edge", user_claim="sub", allowed_redirect_uris=[], bound_audiences=["edge"],
            token_policies=["default"], path=mount,
        )
        client = hvac.Client(url=server.addr)
        paced(client.auth.jwt.jwt_login, role="edge", jwt=ci_jwt(key, alg="EdDSA", aud="edge"), path=mount)
        assert client.is_authenticated()
    finally:
        root.sys.disable_auth_method(path=mount)
