"""Real hvac 2.4.0 against the real shroud binary: the transit engine (mounted at transit/)."""

import base64
import hashlib
import uuid

import hvac
import hvac.exceptions
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def name():
    return "k-" + uuid.uuid4().hex[:8]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def body_of(ciphertext: str) -> bytes:
    """The bytes after the `vault:vN:` prefix."""
    assert ciphertext.startswith("vault:v"), ciphertext
    return unb64(ciphertext.split(":", 2)[2])


@pytest.fixture
def transit(root):
    return root.secrets.transit


@pytest.mark.parametrize("key_type", ["aes256-gcm96", "chacha20-poly1305"])
def test_symmetric_key_create_read_round_trip(transit, key_type):
    k = name()
    transit.create_key(name=k, key_type=key_type)
    key = transit.read_key(name=k)["data"]
    assert key["name"] == k
    assert key["type"] == key_type
    assert key["latest_version"] == 1
    assert key["min_decryption_version"] == 1
    assert key["deletion_allowed"] is False
    assert key["exportable"] is False
    assert key["supports_encryption"] is True and key["supports_decryption"] is True
    assert key["supports_signing"] is False
    assert set(key["keys"]) == {"1"}
    assert isinstance(key["keys"]["1"], int)

    secret = b"attack at dawn \x00\xff"
    ct = transit.encrypt_data(name=k, plaintext=b64(secret))["data"]
    assert ct["ciphertext"].startswith("vault:v1:")
    assert ct["key_version"] == 1
    # nonce(12) || ciphertext || tag(16)
    assert len(body_of(ct["ciphertext"])) == 12 + len(secret) + 16
    again = transit.encrypt_data(name=k, plaintext=b64(secret))["data"]["ciphertext"]
    assert again != ct["ciphertext"], "each encryption must use a fresh nonce"

    pt = transit.decrypt_data(name=k, ciphertext=ct["ciphertext"])["data"]["plaintext"]
    assert unb64(pt) == secret
    assert unb64(transit.decrypt_data(name=k, ciphertext=again)["data"]["plaintext"]) == secret


def test_create_ed25519_key_exposes_public_key(transit):
    k = name()
    transit.create_key(name=k, key_type="ed25519")
    key = transit.read_key(name=k)["data"]
    assert key["type"] == "ed25519"
    assert key["supports_signing"] is True
    assert key["supports_encryption"] is False
    v1 = key["keys"]["1"]
    assert v1["name"] == "ed25519"
    assert len(unb64(v1["public_key"])) == 32


def test_recreate_key_keeps_existing_key(transit):
    k = name()
    transit.create_key(name=k)
    ct = transit.encrypt_data(name=k, plaintext=b64(b"keep me"))["data"]["ciphertext"]
    resp = transit.create_key(name=k, key_type="chacha20-poly1305")
    assert resp["data"]["type"] == "aes256-gcm96"
    assert any("already existed" in w for w in resp["warnings"])
    assert unb64(transit.decrypt_data(name=k, ciphertext=ct)["data"]["plaintext"]) == b"keep me"


def test_list_keys_contains_created_keys(transit):
    names = sorted(name() for _ in range(3))
    for k in names:
        transit.create_key(name=k)
    listed = transit.list_keys()["data"]["keys"]
    assert set(names) <= set(listed)


def test_read_missing_key_is_invalid_path(transit):
    with pytest.raises(hvac.exceptions.InvalidPath):
        transit.read_key(name=name())


def test_tampered_ciphertext_fails(transit):
    k = name()
    transit.create_key(name=k)
    ct = transit.encrypt_data(name=k, plaintext=b64(b"hello"))["data"]["ciphertext"]
    raw = bytearray(body_of(ct))
    raw[-1] ^= 0x01
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        transit.decrypt_data(name=k, ciphertext="vault:v1:" + b64(bytes(raw)))
    assert "message authentication failed" in str(e.value)


def test_ciphertext_of_another_key_fails(transit):
    a, b = name(), name()
    transit.create_key(name=a)
    transit.create_key(name=b)
    ct = transit.encrypt_data(name=a, plaintext=b64(b"for a only"))["data"]["ciphertext"]
    with pytest.raises(hvac.exceptions.InvalidRequest):
        transit.decrypt_data(name=b, ciphertext=ct)


def test_batch_encrypt_decrypt_with_references(transit):
    k = name()
    transit.create_key(name=k)
    items = [{"plaintext": b64(f"item-{i}".encode()), "reference": f"ref-{i}"} for i in range(5)]
    enc = transit.encrypt_data(name=k, batch_input=items)["data"]["batch_results"]
    assert [r["reference"] for r in enc] == [f"ref-{i}" for i in range(5)]
    assert all(r["ciphertext"].startswith("vault:v1:") and "error" not in r for r in enc)

    dec_in = [{"ciphertext": r["ciphertext"], "reference": r["reference"]} for r in enc]
    dec = transit.decrypt_data(name=k, batch_input=dec_in)["data"]["batch_results"]
    assert [r["reference"] for r in dec] == [f"ref-{i}" for i in range(5)]
    assert [unb64(r["plaintext"]) for r in dec] == [f"item-{i}".encode() for i in range(5)]


def test_batch_decrypt_reports_the_bad_item(transit):
    k = name()
    transit.create_key(name=k)
    good = transit.encrypt_data(name=k, plaintext=b64(b"ok"))["data"]["ciphertext"]
    batch = [{"ciphertext": good, "reference": "good"}, {"ciphertext": "not-a-ciphertext", "reference": "bad"}]
    # Vault answers 400 with the full envelope when any item failed on its input.
    with pytest.raises(hvac.exceptions.InvalidRequest):
        transit.decrypt_data(name=k, batch_input=batch)


def test_rotate_rewrap_and_min_decryption_version(transit):
    k = name()
    transit.create_key(name=k)
    old = transit.encrypt_data(name=k, plaintext=b64(b"v1 data"))["data"]["ciphertext"]
    assert old.startswith("vault:v1:")

    transit.rotate_key(name=k)
    key = transit.read_key(name=k)["data"]
    assert key["latest_version"] == 2
    assert set(key["keys"]) == {"1", "2"}
    new = transit.encrypt_data(name=k, plaintext=b64(b"v2 data"))["data"]
    assert new["ciphertext"].startswith("vault:v2:") and new["key_version"] == 2
    # the old ciphertext still decrypts after rotation
    assert unb64(transit.decrypt_data(name=k, ciphertext=old)["data"]["plaintext"]) == b"v1 data"

    rewrapped = transit.rewrap_data(name=k, ciphertext=old)["data"]
    assert rewrapped["ciphertext"].startswith("vault:v2:")
    assert rewrapped["key_version"] == 2
    assert unb64(transit.decrypt_data(name=k, ciphertext=rewrapped["ciphertext"])["data"]["plaintext"]) == b"v1 data"

    transit.update_key_configuration(name=k, min_decryption_version=2)
    assert transit.read_key(name=k)["data"]["min_decryption_version"] == 2
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        transit.decrypt_data(name=k, ciphertext=old)
    assert "disallowed by policy" in str(e.value)
    # rewrapped data survives
    assert unb64(transit.decrypt_data(name=k, ciphertext=rewrapped["ciphertext"])["data"]["plaintext"]) == b"v1 data"
    # and it can be lowered again while the material exists
    transit.update_key_configuration(name=k, min_decryption_version=1)
    assert unb64(transit.decrypt_data(name=k, ciphertext=old)["data"]["plaintext"]) == b"v1 data"


def test_ciphertext_version_too_new_is_refused(transit):
    k = name()
    transit.create_key(name=k)
    ct = transit.encrypt_data(name=k, plaintext=b64(b"x"))["data"]["ciphertext"]
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        transit.decrypt_data(name=k, ciphertext=ct.replace("vault:v1:", "vault:v9:"))
    assert "version is too new" in str(e.value)


def test_encrypt_with_explicit_old_key_version(transit):
    k = name()
    transit.create_key(name=k)
    transit.rotate_key(name=k)
    ct = transit.encrypt_data(name=k, plaintext=b64(b"pinned"), key_version=1)["data"]
    assert ct["ciphertext"].startswith("vault:v1:") and ct["key_version"] == 1
    assert unb64(transit.decrypt_data(name=k, ciphertext=ct["ciphertext"])["data"]["plaintext"]) == b"pinned"


def test_associated_data_is_bound(transit):
    k = name()
    transit.create_key(name=k)
    ad = b64(b"row-17")
    ct = transit.encrypt_data(name=k, plaintext=b64(b"bound"), associated_data=ad)["data"]["ciphertext"]
    assert unb64(transit.decrypt_data(name=k, ciphertext=ct, associated_data=ad)["data"]["plaintext"]) == b"bound"
    with pytest.raises(hvac.exceptions.InvalidRequest):
        transit.decrypt_data(name=k, ciphertext=ct, associated_data=b64(b"row-18"))


def test_derived_key_needs_matching_context(transit):
    k = name()
    transit.create_key(name=k, derived=True)
    ctx = b64(b"tenant-a")
    ct = transit.encrypt_data(name=k, plaintext=b64(b"per-tenant"), context=ctx)["data"]["ciphertext"]
    assert unb64(transit.decrypt_data(name=k, ciphertext=ct, context=ctx)["data"]["plaintext"]) == b"per-tenant"
    with pytest.raises(hvac.exceptions.InvalidRequest):
        transit.decrypt_data(name=k, ciphertext=ct, context=b64(b"tenant-b"))
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        transit.encrypt_data(name=k, plaintext=b64(b"x"))
    assert "context" in str(e.value)


def test_generate_data_key_plaintext_and_wrapped(transit):
    k = name()
    transit.create_key(name=k)
    dk = transit.generate_data_key(name=k, key_type="plaintext")["data"]
    plain = unb64(dk["plaintext"])
    assert len(plain) == 32
    assert dk["ciphertext"].startswith("vault:v1:")
    assert unb64(transit.decrypt_data(name=k, ciphertext=dk["ciphertext"])["data"]["plaintext"]) == plain

    wrapped = transit.generate_data_key(name=k, key_type="wrapped", bits=512)["data"]
    assert not wrapped.get("plaintext")
    assert len(unb64(transit.decrypt_data(name=k, ciphertext=wrapped["ciphertext"])["data"]["plaintext"])) == 64

    short = transit.generate_data_key(name=k, key_type="plaintext", bits=128)["data"]
    assert len(unb64(short["plaintext"])) == 16


def test_generate_data_key_does_not_create_keys(transit):
    k = name()
    with pytest.raises(hvac.exceptions.VaultError):
        transit.generate_data_key(name=k, key_type="plaintext")
    with pytest.raises(hvac.exceptions.InvalidPath):
        transit.read_key(name=k)


def test_generate_random_bytes(transit):
    r = transit.generate_random_bytes(n_bytes=48)["data"]["random_bytes"]
    assert len(unb64(r)) == 48
    h = transit.generate_random_bytes(n_bytes=16, output_format="hex")["data"]["random_bytes"]
    assert len(bytes.fromhex(h)) == 16
    default = transit.generate_random_bytes()["data"]["random_bytes"]
    assert len(unb64(default)) == 32
    assert transit.generate_random_bytes(n_bytes=32)["data"]["random_bytes"] != default


def test_hash_data_known_sha256(transit):
    got = transit.hash_data(hash_input=b64(b"abc"), algorithm="sha2-256")["data"]["sum"]
    assert got == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    data = b"shroud transit hash test"
    assert transit.hash_data(hash_input=b64(data), algorithm="sha2-512")["data"]["sum"] == hashlib.sha512(data).hexdigest()
    as_b64 = transit.hash_data(hash_input=b64(data), algorithm="sha2-256", output_format="base64")["data"]["sum"]
    assert unb64(as_b64) == hashlib.sha256(data).digest()
    # the default algorithm is sha2-256
    assert transit.hash_data(hash_input=b64(data))["data"]["sum"] == hashlib.sha256(data).hexdigest()


def test_generate_hmac_and_verify(transit):
    k = name()
    transit.create_key(name=k)
    inp = b64(b"message to authenticate")
    mac = transit.generate_hmac(name=k, hash_input=inp)["data"]["hmac"]
    assert mac.startswith("vault:v1:")
    assert len(body_of(mac)) == 32  # sha2-256 default
    assert transit.generate_hmac(name=k, hash_input=inp)["data"]["hmac"] == mac
    assert transit.generate_hmac(name=k, hash_input=b64(b"other"))["data"]["hmac"] != mac
    mac512 = transit.generate_hmac(name=k, hash_input=inp, algorithm="sha2-512")["data"]["hmac"]
    assert len(body_of(mac512)) == 64

    assert transit.verify_signed_data(name=k, hash_input=inp, hmac=mac)["data"]["valid"] is True
    assert transit.verify_signed_data(name=k, hash_input=b64(b"other"), hmac=mac)["data"]["valid"] is False
    # a different key gives a different MAC
    k2 = name()
    transit.create_key(name=k2)
    assert transit.generate_hmac(name=k2, hash_input=inp)["data"]["hmac"] != mac


def test_sign_verify_ed25519(transit):
    k = name()
    transit.create_key(name=k, key_type="ed25519")
    msg = b"signed by shroud"
    sig = transit.sign_data(name=k, hash_input=b64(msg))["data"]["signature"]
    assert sig.startswith("vault:v1:")
    assert transit.verify_signed_data(name=k, hash_input=b64(msg), signature=sig)["data"]["valid"] is True
    assert transit.verify_signed_data(name=k, hash_input=b64(msg + b"!"), signature=sig)["data"]["valid"] is False

    # The signature is plain Ed25519 under the published public key: check it independently.
    pub = Ed25519PublicKey.from_public_bytes(unb64(transit.read_key(name=k)["data"]["keys"]["1"]["public_key"]))
    raw = body_of(sig)
    assert len(raw) == 64
    pub.verify(raw, msg)
    with pytest.raises(InvalidSignature):
        pub.verify(raw, msg + b"!")

    # jws marshaling: URL-safe unpadded base64 of the same kind of signature
    jws = transit.sign_data(name=k, hash_input=b64(msg), marshaling_algorithm="jws")["data"]["signature"]
    enc = jws.split(":", 2)[2]
    assert "=" not in enc and "+" not in enc and "/" not in enc
    pub.verify(base64.urlsafe_b64decode(enc + "=" * (-len(enc) % 4)), msg)
    assert transit.verify_signed_data(
        name=k, hash_input=b64(msg), signature=jws, marshaling_algorithm="jws"
    )["data"]["valid"] is True


def test_sign_after_rotation_uses_new_version_old_still_verifies(transit):
    k = name()
    transit.create_key(name=k, key_type="ed25519")
    msg = b64(b"versioned")
    s1 = transit.sign_data(name=k, hash_input=msg)["data"]["signature"]
    transit.rotate_key(name=k)
    s2 = transit.sign_data(name=k, hash_input=msg)["data"]["signature"]
    assert s2.startswith("vault:v2:")
    assert transit.verify_signed_data(name=k, hash_input=msg, signature=s1)["data"]["valid"] is True
    assert transit.verify_signed_data(name=k, hash_input=msg, signature=s2)["data"]["valid"] is True


def test_aes_key_cannot_sign(transit):
    k = name()
    transit.create_key(name=k)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        transit.sign_data(name=k, hash_input=b64(b"x"))


def test_delete_key_needs_deletion_allowed(transit):
    k = name()
    transit.create_key(name=k)
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        transit.delete_key(name=k)
    assert "deletion is not allowed" in str(e.value)
    transit.read_key(name=k)  # still there

    transit.update_key_configuration(name=k, deletion_allowed=True)
    assert transit.read_key(name=k)["data"]["deletion_allowed"] is True
    transit.delete_key(name=k)
    with pytest.raises(hvac.exceptions.InvalidPath):
        transit.read_key(name=k)


def test_encrypt_upsert_creates_missing_key(transit):
    k = name()
    with pytest.raises(hvac.exceptions.InvalidPath):
        transit.read_key(name=k)
    ct = transit.encrypt_data(name=k, plaintext=b64(b"upserted"))["data"]["ciphertext"]
    assert ct.startswith("vault:v1:")
    key = transit.read_key(name=k)["data"]
    assert key["type"] == "aes256-gcm96" and key["latest_version"] == 1
    assert unb64(transit.decrypt_data(name=k, ciphertext=ct)["data"]["plaintext"]) == b"upserted"


def test_decrypt_does_not_create_keys(transit):
    k = name()
    with pytest.raises(hvac.exceptions.VaultError):
        transit.decrypt_data(name=k, ciphertext="vault:v1:" + b64(b"\0" * 40))
    with pytest.raises(hvac.exceptions.InvalidPath):
        transit.read_key(name=k)


def test_encrypt_upsert_needs_create_capability(server, root):
    transit = root.secrets.transit
    existing, missing = name(), name()
    transit.create_key(name=existing)
    pol = "p-" + uuid.uuid4().hex[:8]
    root.sys.create_or_update_policy(name=pol, policy='path "transit/encrypt/*" { capabilities = ["update"] }')
    tok = root.auth.token.create(policies=[pol], ttl="10m")["auth"]["client_token"]
    app = hvac.Client(url=server.addr, token=tok).secrets.transit
    assert app.encrypt_data(name=existing, plaintext=b64(b"ok"))["data"]["ciphertext"].startswith("vault:v1:")
    with pytest.raises(hvac.exceptions.Forbidden):
        app.encrypt_data(name=missing, plaintext=b64(b"no create"))
    with pytest.raises(hvac.exceptions.InvalidPath):
        transit.read_key(name=missing)
    root.sys.delete_policy(name=pol)


def test_trim_key(transit):
    k = name()
    transit.create_key(name=k)
    cts = {}
    for v in range(1, 5):
        cts[v] = transit.encrypt_data(name=k, plaintext=b64(f"v{v}".encode()))["data"]["ciphertext"]
        assert cts[v].startswith(f"vault:v{v}:")
        if v < 4:
            transit.rotate_key(name=k)
    assert transit.read_key(name=k)["data"]["latest_version"] == 4

    # trimming needs both minimums set at or above the target
    with pytest.raises(hvac.exceptions.InvalidRequest):
        transit.trim_key(name=k, min_version=3)
    # (hvac itself insists on min_encryption_version > min_decryption_version when both are given)
    transit.update_key_configuration(name=k, min_decryption_version=3, min_encryption_version=4)
    transit.trim_key(name=k, min_version=3)
    key = transit.read_key(name=k)["data"]
    assert key["min_available_version"] == 3
    assert set(key["keys"]) == {"3", "4"}

    # trimmed versions are gone for good: even lowering min_decryption_version cannot bring them back
    with pytest.raises(hvac.exceptions.InvalidRequest):
        transit.update_key_configuration(name=k, min_decryption_version=1)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        transit.decrypt_data(name=k, ciphertext=cts[1])
    for v in (3, 4):
        assert unb64(transit.decrypt_data(name=k, ciphertext=cts[v])["data"]["plaintext"]) == f"v{v}".encode()
