"""The tutorial (examples/tutorial.py) runs start to end on its quick settings and is a valid notebook."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parents[1] / "examples" / "tutorial.py"


# in the default suite (issue 18: the tutorial runs there in under 2 minutes on 2 cores); about 30-40 s
def test_tutorial_runs_and_hyco_improves_on_the_guess(tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg", "HYCO_TUTORIAL_DIR": str(tmp_path / "work")}
    env.pop("HYCO_TUTORIAL_EXPERIMENT", None)
    result = subprocess.run([sys.executable, str(TUTORIAL)], capture_output=True, text=True, timeout=600,
                            cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    work = tmp_path / "work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]  # writes only where it is told
    overview = work / "overview.png"
    assert overview.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and overview.stat().st_size > 10_000
    metrics = json.loads((work / "run" / "metrics.json").read_text())
    assert metrics["experiment"] == "heat_2d_quick"
    assert set(metrics["runs"]) == {"physical", "synthetic", "hyco_physical", "hyco_synthetic"}
    # the printed comparison is the run's own: the κ errors it prints are those in metrics.json
    hyco_error = metrics["runs"]["hyco_physical"]["coefficients"]["diffusivity"]["rel_error"]
    assert f"hyco_physical: κ relative error {hyco_error:.4f}" in result.stdout
    initial = float(result.stdout.split("initial: κ relative error ")[1].split()[0])
    assert hyco_error < initial
    assert "| HYCO network |" in result.stdout


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
