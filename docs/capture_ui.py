"""Screenshots of a real nlbench run in the MLflow UI, for the README.

Not part of the package: it needs Playwright (``pip install playwright``) and a Chromium binary
(Debian: ``apt-get install chromium``). Start the UI first, e.g. ``nlbench ui --port 5055``, then::

    python docs/capture_ui.py --url http://127.0.0.1:5055 --run RUN_ID

It opens the run's experiment in MLflow's model-training view, closes the assistant panel, and saves
the run's per-experience accuracy charts and the experiment's run table under ``docs/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlflow import MlflowClient
from playwright.sync_api import Page, sync_playwright

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _settle(page: Page, ms: int = 4000) -> None:
    # The UI polls the server (auto-refresh), so the network never goes idle: wait a fixed time.
    page.wait_for_timeout(ms)


def _model_training_view(page: Page) -> None:
    page.get_by_text("Model training", exact=True).click()
    close = page.get_by_role("button", name="Close")
    if close.count():
        close.first.click()
    _settle(page, 1000)


def capture(url: str, run_id: str, out: Path, chromium: str) -> list[Path]:
    exp_id = MlflowClient(url).get_run(run_id).info.experiment_id
    shots = [out / f"mlflow_ui_{name}.png" for name in ("run", "runs")]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(f"{url}/#/experiments/{exp_id}/runs")
        _settle(page)
        _model_training_view(page)  # switching views navigates, so go to the run afterwards
        page.goto(f"{url}/#/experiments/{exp_id}/runs/{run_id}/model-metrics")
        _settle(page)
        page.get_by_placeholder("Search metric charts").fill("acc/exp")
        _settle(page)
        page.screenshot(path=shots[0])
        page.goto(f"{url}/#/experiments/{exp_id}/runs")
        _settle(page)
        run = MlflowClient(url).get_run(run_id)
        query = f'tags.scenario = "{run.data.tags["scenario"]}" and tags.seed = "{run.data.tags["seed"]}"'
        search = page.locator("input[placeholder*='metrics.']").first
        search.fill(query)
        search.press("Enter")
        _settle(page)
        # Expand the suite's parent run to list its child runs.
        page.locator("[row-index='0'] [col-id='attributes.`Run Name`'] button").first.click()
        _settle(page)
        page.screenshot(path=shots[1])
        browser.close()
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:5000", help="Where `nlbench ui` serves")
    parser.add_argument("--run", required=True, help="Run id to show")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent, help="Directory for the PNGs")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium executable")
    args = parser.parse_args()
    for path in capture(args.url.rstrip("/"), args.run, args.out, args.chromium):
        print(path)


if __name__ == "__main__":
    main()
