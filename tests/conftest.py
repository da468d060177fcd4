from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


def require_shared() -> None:
    """Skip a test that reads ../shared when it is absent; CI sets NLBENCH_REQUIRE_SHARED=1 to fail instead."""
    if not (SHARED / "data" / "heart").is_dir():
        if os.environ.get("NLBENCH_REQUIRE_SHARED"):
            pytest.fail(f"{SHARED} is required here (NLBENCH_REQUIRE_SHARED is set) but absent")
        pytest.skip(f"{SHARED / 'data' / 'heart'} is absent")


TRITON_DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    "not __import__('torch').cuda.is_available()", reason="no GPU here: the kernels run under the interpreter"))]


def run_triton_check(code: str, done: str, device: str) -> None:
    """Run `code` in a fresh interpreter with its tensors on `device` ($CHECK_DEVICE): on "cpu" under
    TRITON_INTERPRET=1 (it must be set before Triton compiles a kernel), so the Triton kernels run without a GPU;
    fail unless it exits 0 and prints `done`."""
    import subprocess
    import sys

    env = {**os.environ, "CHECK_DEVICE": device}
    if device == "cpu":
        env["TRITON_INTERPRET"] = "1"
    else:
        env.pop("TRITON_INTERPRET", None)
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert done in run.stdout


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    """A throw-away SQLite MLflow store, so tests never touch ./mlflow.db."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(autouse=True)
def _serial_and_own_spool(monkeypatch, tmp_path):
    """Suites run in the test's process unless a test asks for another backend (worker processes would
    import torch again for each CLI call), and a result the store refused is kept under the test's folder."""
    monkeypatch.setenv("NLBENCH_BACKEND", "serial")
    monkeypatch.setenv("NLBENCH_SPOOL", str(tmp_path / "spool"))


@pytest.fixture(autouse=True)
def _quiet_avalanche():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture
def isolated_data(monkeypatch, tmp_path):
    """No user data dir, an empty cache of the test's own, and no network."""
    import urllib.error
    import urllib.request

    from nlbench.data.sources.files import CACHE_ENV, DATA_ENV

    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(urllib.request, "urlopen", offline)


def serve(monkeypatch, payload_for) -> list[str]:
    """Answer `urllib.request.urlopen(url)` with `payload_for(url)` bytes; returns the URLs asked for."""
    import urllib.request

    urls: list[str] = []

    class Response:
        def __init__(self, url: str):
            urls.append(url)
            self.payload = payload_for(url)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self) -> bytes:
            return self.payload

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: Response(url))
    return urls


def fabricated_result(suite: str, scenario: str, method: str, seed: int, R, b, summary, chance=0.1,
                      status="FINISHED", family="avalanche"):
    """A RunResult as the run unit returns it, for tests of everything downstream of a run (no training)."""
    import time

    from nlbench.run.config import RunConfig
    from nlbench.run.execute import RunResult

    config = RunConfig(suite, scenario, scenario, {}, method, method, {"lr": 0.1}, seed)
    now = int(time.time() * 1000)
    if status != "FINISHED":
        return RunResult(config, status, "class-incremental", family, error="RuntimeError: boom", traceback="tb")
    return RunResult(config, status, "class-incremental", family, R=[list(r) for r in R], b=list(b),
                     summary=dict(summary), train_time_s=1.0, eval_time_s=0.1, peak_mem_mb=100.0, n_params=10,
                     chance_acc=chance, data_source="built-in", started_ms=now - 1000, ended_ms=now)


class MlflowServer:
    """A real `mlflow server` on 127.0.0.1, with its store under `folder`; it can be stopped and started again on
    the same port and store, as a server that went down and came back."""

    def __init__(self, folder: Path):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.folder, self.proc = folder, None
        self.uri = f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        import subprocess
        import sys
        import time
        import urllib.request

        self.proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port",
                                      str(self.port), "--backend-store-uri", f"sqlite:///{self.folder / 'server.db'}",
                                      "--artifacts-destination", str(self.folder / "artifacts")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2):
                    return self.uri
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    pytest.fail("mlflow server did not start")
                time.sleep(0.5)

    def stop(self) -> None:
        """The server and its workers (it runs uvicorn in a process group of its own)."""
        import signal

        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture
def server(tmp_path):
    """A real `mlflow server` on 127.0.0.1 (a free port), stopped after the test."""
    srv = MlflowServer(tmp_path)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def mlflow_server(server):
    return server.uri
