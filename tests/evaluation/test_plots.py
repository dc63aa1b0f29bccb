"""The figures module writes files without choosing a matplotlib backend (a notebook keeps its own)."""

import subprocess
import sys

import numpy as np

from hyco.evaluation import plots


def test_import_leaves_the_backend_and_pyplot_alone():
    # a backend chosen before hyco is imported (a notebook's inline one, a desktop's window) stays chosen;
    # `template` is matplotlib's do-nothing interactive backend, so this runs headless
    code = ("import matplotlib; matplotlib.use('template'); import hyco.evaluation.plots, sys; "
            "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["template", "False"]


def test_figures_are_written_whatever_the_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "template")
    truth = np.linspace(0, 1, 5 * 8 * 8).reshape(5, 8, 8)
    png = plots.plot_snapshots(truth, {"model": truth * 0.9}, times=[1, 4], path=tmp_path / "s.png")
    gif = plots.animate(truth, {"model": truth * 0.9}, tmp_path / "a.gif")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2_000
    assert gif.read_bytes()[:6] == b"GIF89a" and gif.stat().st_size > 2_000
