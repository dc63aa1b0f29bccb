"""The report renders in a real browser: headless Chromium (Debian package) takes a screenshot."""

import os
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from hyco.evaluation import plots
from hyco.evaluation.report import Figure, write_report
from tests.evaluation.test_report import METRICS

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    """The Chromium binary; installed from Debian's packages when missing and we may (root with apt)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium is not installed and cannot be installed here (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, capture_output=True,
                   timeout=900)
    return shutil.which("chromium")


def test_report_renders_in_headless_chromium(tmp_path):
    rng = np.random.default_rng(1)
    truth = rng.standard_normal((5, 16, 16))
    figure = plots.plot_snapshots(truth, {"model": truth * 0.8}, [0, 4], tmp_path / "figures" / "snap.png")
    _, html = write_report(tmp_path, METRICS, [Figure("Snapshots", figure)], "seed: 0\n")
    shot = tmp_path / "shot.png"
    result = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                             "--window-size=1000,1400", f"--screenshot={shot}", html.as_uri()],
                            capture_output=True, text=True, timeout=120)
    assert shot.exists(), result.stderr[-2000:]
    image = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert image.shape == (1400, 1000)
    # a rendered page: mostly white background, but text, table and the embedded figure add contrast
    assert image.mean() > 150 and image.std() > 20
    dark_rows = (image < 100).any(axis=1).sum()
    assert dark_rows > 100  # title, table rows and the figure occupy many rows
