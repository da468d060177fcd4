"""The generated reference and the README's layout say what the code has."""

import re
from pathlib import Path

from nlbench.cli.reference import reference_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_reference_is_generated_from_the_declarations():
    committed = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    assert committed == reference_markdown(), "docs/reference.md is stale: nlbench list --markdown > docs/reference.md"


def test_readme_layout_lists_every_stage_of_the_package():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout"):]
    listed = set(re.findall(r"^  ([a-z_]+)/ ", layout, flags=re.M))
    folders = {p.name for p in (ROOT / "nlbench").iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert listed == folders, (listed, folders)
