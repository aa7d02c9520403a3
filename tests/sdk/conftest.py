"""Starts the real `moat demo` binary (gateway + built-in simulated provider) for the SDK tests."""

import json
import os
import subprocess
import sys
import threading

import pytest

MOAT_BIN = os.environ.get("MOAT_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "target", "debug", "moat"))


class Demo:
    """A running `moat demo`: its URLs, key, config file, and a way to make scoped keys."""

    def __init__(self, tmpdir):
        self.proc = subprocess.Popen(
            [MOAT_BIN, "demo", "--listen", "127.0.0.1:0", "--json", "--dir", str(tmpdir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "MOAT_LOG": "warn"},
        )
        line = self._readline_with_timeout(30)
        if not line:
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            raise RuntimeError(f"moat demo did not start: {err}")
        info = json.loads(line)
        self.base_url = info["base_url"]
        self.anthropic_base_url = info["anthropic_base_url"]
        self.key = info["key"]
        self.config = info["config"]

    def _readline_with_timeout(self, seconds):
        box = []
        t = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(seconds)
        return box[0] if box else ""

    def create_key(self, *args):
        out = subprocess.run(
            [MOAT_BIN, "keys", "create", "--config", self.config, "--account", "sdk-tests", "--json", *args],
            check=True, capture_output=True, text=True, timeout=30,
        )
        return json.loads(out.stdout)

    def revoke_key(self, key_id):
        subprocess.run([MOAT_BIN, "keys", "revoke", "--config", self.config, key_id],
                       check=True, capture_output=True, text=True, timeout=30)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    if not os.path.exists(MOAT_BIN):
        pytest.fail(f"moat binary not found at {MOAT_BIN}; build it first (cargo build -p moat)")
    d = Demo(tmp_path_factory.mktemp("moat-demo"))
    yield d
    d.stop()
    assert d.proc.returncode == 0, f"moat demo exited with {d.proc.returncode} on SIGTERM"
