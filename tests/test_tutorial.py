"""The tutorial (examples/tutorial.py, a jupytext script) runs as a notebook, twice in a row in one folder, and
is a valid notebook."""

import json
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parents[1] / "examples" / "tutorial.py"


def _execute(notebook, cwd: Path):
    """Run every cell in a fresh Jupyter kernel (what "Run all" does); returns the executed notebook."""
    from nbclient import NotebookClient

    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return notebook


def _outputs(notebook) -> tuple[str, list[dict]]:
    """(everything the cells printed, the rich outputs they displayed)."""
    printed, shown = [], []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and output.name == "stdout":
                printed.append(output.text)
            elif output.output_type in ("display_data", "execute_result"):
                shown.append(output.data)
    return "".join(printed), shown


# in the default suite: two runs of the quick experiment (the second reuses the data), about 1-2 minutes on 2 cores
def test_tutorial_runs_as_a_notebook_twice_and_hyco_improves_on_the_guess(tmp_path, monkeypatch):
    jupytext = pytest.importorskip("jupytext")
    pytest.importorskip("nbclient")
    monkeypatch.setenv("HYCO_TUTORIAL_DIR", str(tmp_path / "work"))
    monkeypatch.delenv("HYCO_TUTORIAL_EXPERIMENT", raising=False)
    monkeypatch.delenv("MPLBACKEND")  # the kernel's own (inline) backend, as in a notebook
    work = tmp_path / "work"
    runs = []
    for _ in range(2):  # was: the second run failed with "a physical run already exists in this output_dir"
        notebook = _execute(jupytext.read(TUTORIAL), tmp_path)
        metrics = json.loads((work / "run" / "metrics.json").read_text())
        runs.append((*_outputs(notebook), metrics))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]  # writes only where it is told
    assert len(list((work / "data").glob("*.h5"))) == 1  # the second run reused the dataset
    for printed, shown, metrics in runs:
        assert metrics["experiment"] == "heat_2d_quick"
        assert "Φ-ML" not in printed  # library chatter goes to the log, not into the notebook's output
        assert set(metrics["runs"]) == {"physical", "synthetic", "hyco_physical", "hyco_synthetic"}
        # the printed comparison is the run's own: the κ errors it prints are those in metrics.json
        hyco_error = metrics["runs"]["hyco_physical"]["coefficients"]["diffusivity"]["rel_error"]
        assert f"hyco_physical: κ relative error {hyco_error:.4f}" in printed
        initial = float(printed.split("initial: κ relative error ")[1].split()[0])
        assert hyco_error < initial
        tables = [data["text/html"] for data in shown if "text/html" in data]
        # run.table() as HTML tables (rollout errors, coefficients)
        assert len(tables) == 1 and tables[0].count("<table>") == 2 and "<td>HYCO network</td>" in tables[0]
        figures = [data["image/png"] for data in shown if "image/png" in data]
        assert len(figures) == 1  # plt.show() drew the overview in the notebook
    # the second run trained every model anew, to the same numbers (each training is seeded)
    first, second = runs[0][2], runs[1][2]
    assert second["learned_coefficients"] == first["learned_coefficients"]
    assert {k: e["rollout"]["rel_l2"] for k, e in second["runs"].items()} == {
        k: e["rollout"]["rel_l2"] for k, e in first["runs"].items()}
    overview = work / "overview.png"
    assert overview.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and overview.stat().st_size > 10_000


def test_tutorial_is_a_jupytext_notebook():
    jupytext = pytest.importorskip("jupytext")
    notebook = jupytext.read(TUTORIAL)
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds.count("markdown") >= 6 and kinds.count("code") >= 8
    headings = [cell.source.splitlines()[0] for cell in notebook.cells if cell.cell_type == "markdown"]
    assert headings[0].startswith("# hyco in a notebook")
    assert any("Generate" in h for h in headings) and any("Compare" in h for h in headings)
    # the notebook converts back to the same cells, byte for byte (the header names jupytext's version)
    text = TUTORIAL.read_text()
    written = jupytext.writes(notebook, fmt="py:percent")
    assert written[written.index("# %%"):].strip() == text[text.index("# %%"):].strip()
