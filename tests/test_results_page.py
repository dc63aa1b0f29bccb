"""docs/results.md is made from the study's committed JSON by benchmarks.study_page, never typed by hand."""

import json
from pathlib import Path

from benchmarks.study_page import PAGE, STUDY_JSON, render

ROOT = Path(__file__).resolve().parents[1]


def test_the_results_page_is_the_studys_json_rendered():
    assert STUDY_JSON.is_file() and PAGE.is_file()
    assert PAGE.read_text() == render(json.loads(STUDY_JSON.read_text())), \
        "docs/results.md differs from benchmarks/results/hyco_study.json: run `python -m benchmarks.study_page`"


def test_the_results_page_is_in_the_docs_navigation():
    assert "results.md" in (ROOT / "mkdocs.yml").read_text()
