"""The report of a quick field experiment (heat, a diffusivity field) and a scalar one (Burgers, a viscosity)
renders in a real browser: headless Chromium (Debian package) screenshots it and dumps its DOM after layout.

From the DOM: the error maps and the coefficient figure are there with the observed region outlined, no
figure's text runs into another (the check each PNG carries from its drawing), no heading or figure overlaps
its neighbour on the rendered page (measured by the browser), the configuration is folded away."""

import html.parser
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]

# run in the page after layout: every heading, figure, table and list against the next one (the page flows
# top-down, so an overlap shows between neighbours); the result goes into the DOM for --dump-dom to carry out
LAYOUT_PROBE = """<script>
window.addEventListener('load', () => {
  const blocks = [...document.body.children].filter(e => e.tagName !== 'SCRIPT' && e.tagName !== 'STYLE');
  const found = [];
  for (let i = 1; i < blocks.length; i++) {
    const a = blocks[i - 1].getBoundingClientRect(), b = blocks[i].getBoundingClientRect();
    if (a.height && b.height && a.bottom > b.top + 0.5) found.push(blocks[i - 1].tagName + '/' + blocks[i].tagName);
  }
  for (const fig of document.querySelectorAll('figure')) {
    const [title, img] = [fig.querySelector('h2'), fig.querySelector('img')];
    if (title.getBoundingClientRect().bottom > img.getBoundingClientRect().top + 0.5) found.push('figure title/img');
  }
  document.body.setAttribute('data-layout-overlaps', JSON.stringify(found));
  document.body.setAttribute('data-images-loaded',
      String([...document.images].every(i => i.complete && i.naturalWidth > 0)));
});
</script>"""


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


class Page(html.parser.HTMLParser):
    """The elements the checks read: every figure's attributes and image alt, details, body attributes."""

    def __init__(self):
        super().__init__()
        self.figures: list[dict] = []
        self.details: list[dict] = []
        self.body: dict = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "figure":
            self.figures.append(attrs)
        elif tag == "img" and self.figures:
            self.figures[-1]["alt"] = attrs.get("alt", "")
        elif tag == "details":
            self.details.append(attrs)
        elif tag == "body":
            self.body = attrs


def _hyco_run(root, experiment: str):
    run_dir = root / experiment
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "hyco", "run", f"experiment={experiment}", f"output_dir={run_dir}",
                             f"data_dir={root / 'data'}", "data.num_test=3"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def _render(browser: str, html_path, tmp_path) -> tuple[Page, np.ndarray]:
    probe = html_path.with_name("probed.html")
    probe.write_text(html_path.read_text().replace("</body>", LAYOUT_PROBE + "</body>"))
    common = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1150,1400"]
    dom = subprocess.run([*common, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=180)
    page = Page()
    page.feed(dom.stdout)
    shot = html_path.with_name("screenshot.png")
    result = subprocess.run([*common, f"--screenshot={shot}", html_path.as_uri()], capture_output=True, text=True,
                            timeout=180)
    assert shot.exists(), result.stderr[-2000:]
    return page, np.asarray(Image.open(shot).convert("L"), dtype=float)


@pytest.mark.parametrize("experiment, coefficient_figure, outlined", [
    ("heat_2d_quick", "coefficient_maps", True),  # a diffusivity field: a map with the observed region
    ("burgers_1d_quick", "coefficient_values", False),  # a viscosity: a dot plot, no region to outline
])
def test_report_renders_in_headless_chromium(tmp_path, experiment, coefficient_figure, outlined):
    browser = chromium()
    run_dir = _hyco_run(tmp_path, experiment)
    page, image = _render(browser, run_dir / "report.html", tmp_path)
    assert page.body.get("data-images-loaded") == "true"
    assert json.loads(page.body["data-layout-overlaps"]) == []  # measured by the browser after layout
    by_key = {f.get("data-figure"): f for f in page.figures}
    errors = by_key["error_maps"]
    assert errors["data-observed-outline"] == "drawn" and "observed region outlined" in errors["alt"]
    coefficients = by_key[coefficient_figure]
    assert ("observed region outlined" in coefficients["alt"]) == outlined
    assert {"observation", "error_curves", "snapshots", "cycles", "training_curves"} <= set(by_key)
    for figure in page.figures:  # each PNG's own check of its text extents, recorded when it was drawn
        if "data-text-overlaps" in figure:
            assert figure["data-text-overlaps"] == "0", figure
    assert page.details and "open" not in page.details[0]  # the configuration is folded
    # a rendered page: mostly white background, but text, tables and figures add contrast
    assert image.shape == (1400, 1150)
    assert image.mean() > 150 and image.std() > 20
    assert (image < 100).any(axis=1).sum() > 100
