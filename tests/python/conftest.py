"""Starts the real shroud binary in dev mode on a free loopback port for the hvac tests."""

import os
import secrets
import socket
import subprocess
import tempfile
import time
import urllib.request

import hvac
import pytest

BIN = os.environ.get("SHROUD_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "target", "debug", "shroud"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self):
        self.port = free_port()
        self.addr = f"http://127.0.0.1:{self.port}"
        self.root_token = "hvs." + secrets.token_hex(16)
        self.dir = tempfile.mkdtemp(prefix="shroud-pytest-")
        self.log = open(os.path.join(self.dir, "server.log"), "wb")
        self.proc = subprocess.Popen(
            [BIN, "server", "--dev", "--listen", f"127.0.0.1:{self.port}",
             "--data", os.path.join(self.dir, "data")],
            stdin=subprocess.PIPE, stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "SHROUD_DEV_ROOT_TOKEN": self.root_token},
        )
        self.proc.stdin.close()
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("shroud exited early:\n" + self.logs())
            try:
                urllib.request.urlopen(self.addr + "/v1/sys/health", timeout=1)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError("shroud did not become healthy:\n" + self.logs())
                time.sleep(0.1)

    def logs(self):
        self.log.flush()
        with open(os.path.join(self.dir, "server.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture
def root(server):
    return hvac.Client(url=server.addr, token=server.root_token)
