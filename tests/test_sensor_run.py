"""The shipped moving-sensor experiment end to end: `hyco run experiment=heat_paper_sensors_quick` trains all four
models on 16 sensors moving on a circle and reports what they saw."""

import json
import subprocess
import sys

import pytest


@pytest.mark.slow  # about 45 s alone, two minutes under load
def test_the_moving_sensor_experiment_runs_and_learns_the_bumps(tmp_path):
    result = subprocess.run([sys.executable, "-m", "hyco", "run", "experiment=heat_paper_sensors_quick", "threads=1",
                             f"output_dir={tmp_path}/run", f"data_dir={tmp_path}/data"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["observation"]["spatial"] == "sensors"
    assert "16 sensors, layout circle" in metrics["observation"]["description"]
    assert set(metrics["runs"]) == {"physical", "synthetic", "hyco_physical", "hyco_synthetic"}
    for run in ("physical", "hyco_physical"):  # noisy readings on the learner's own grid: the bumps are found
        assert metrics["runs"][run]["coefficients"]["diffusivity"]["parameter_rel_error"] < 0.1
    assert (tmp_path / "run" / "figures" / "observation.png").stat().st_size > 0
