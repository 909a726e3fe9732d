"""The report of ``reproduce --quick`` opened in headless Chromium.

One module-scoped ``reproduce --quick`` over two fast real experiments (one with a GIF)
and three fakes (one passes, one fails a claim, one raises), then one page load; the tests
read what the browser saw. Skipped when no Chromium is installed (``.ci/run`` installs
Debian's ``chromium``).
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from chromium_cdp import PageLoad, chromium_executable, open_chromium
from fake_experiments import FakeParams, register_all, run_fake_ok
from typer.testing import CliRunner

from tokenswarm import cli
from tokenswarm.experiments.registry import register, unregister

CHROMIUM = chromium_executable()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not on PATH (Debian: apt-get install chromium; .ci/run installs it)"
)

REAL = ("trajectories", "long-context")
FAKES = ("fake_ok", "fake_fail", "fake_raise")
WIDTH, HEIGHT = 1400, 1000
SCREENSHOT = "report-screenshot.png"


@dataclass
class Seen:
    """What the browser reported about the page."""

    directory: pathlib.Path
    results: dict[str, dict[str, Any]]
    images: list[dict[str, Any]]
    claim_rows: dict[str, int]
    order: dict[str, Any]
    problems: list[str]
    screenshot: pathlib.Path


# Read in the page after it loaded: every <img>, claim rows per experiment section, and the
# vertical positions that say what a reader meets first.
PAGE_SCRIPT = """(() => {
  const top = (element) => element ? element.getBoundingClientRect().top + window.scrollY : null;
  const images = [...document.images].map((image) => ({
    src: image.getAttribute("src"), complete: image.complete, naturalWidth: image.naturalWidth,
    declaredWidth: image.getAttribute("width") === null ? null : Number(image.getAttribute("width")),
    shownWidth: image.clientWidth,
    room: image.closest("section").getBoundingClientRect().width,
  }));
  const claimRows = {};
  for (const section of document.querySelectorAll("section.experiment")) {
    claimRows[section.id] = section.querySelectorAll("tr.claim").length;
  }
  const sections = [...document.querySelectorAll("section.experiment")].map((section) => ({
    id: section.id, paper: section.closest("section.paper").id,
    figure: top(section.querySelector("figure")), claims: top(section.querySelector("table.claims")),
    metrics: top(section.querySelector("details.block")),
  }));
  const failing = [...document.querySelectorAll(".attention.fail a")].map((a) => a.getAttribute("href"));
  return {
    images, claimRows, sections, failing,
    allClaimRows: document.querySelectorAll("tr.claim").length,
    attention: top(document.querySelector(".attention.fail")),
    firstFigure: top(document.querySelector("figure")),
    anchorsFound: failing.every((href) => document.getElementById(href.slice(1)) !== null),
    brokenLinks: [...document.querySelectorAll('a[href^="#"]')].map((a) => a.getAttribute("href"))
      .filter((href) => document.getElementById(href.slice(1)) === null),
  };
})()"""


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seen]:
    register_all()
    register("fake_fail", title="Fake experiment with a failing claim", reference="0000.00000 fake §3",
             params=FakeParams, quick={"n": 4, "fail_claim": True})(run_fake_ok)
    out = tmp_path_factory.mktemp("browser") / "report"
    try:
        result = CliRunner().invoke(
            cli.app, ["reproduce", "--quick", "--only", ",".join(REAL + FAKES), "--out", str(out)], prog_name="tokenswarm"
        )
    finally:
        for name in FAKES:
            unregister(name)
    assert result.exit_code == 1, result.output  # fake_raise raises
    results = {
        path.parent.name: json.loads(path.read_text()) for path in out.glob("*/result.json")
    }
    assert set(results) == set(REAL) | {"fake_ok", "fake_fail"}
    with open_chromium(CHROMIUM, width=WIDTH, height=HEIGHT) as browser:
        page = PageLoad(browser, (out / "index.html").as_uri(), width=WIDTH, height=HEIGHT)
        facts = page.evaluate(PAGE_SCRIPT)
        screenshot = page.screenshot(out / SCREENSHOT, full_page=True)
        problems = page.problems()
    yield Seen(out, results, facts["images"], facts["claimRows"], facts, problems, screenshot)


def test_every_image_and_animation_loads(seen: Seen) -> None:
    expected = {
        f"{name}/{output}"
        for name, result in seen.results.items()
        for output in result["outputs"]
        if pathlib.PurePath(output).suffix in {".png", ".gif"}
    }
    assert any(path.endswith(".gif") for path in expected)  # an animation is among them
    assert {image["src"] for image in seen.images} == expected
    broken = [image["src"] for image in seen.images if not (image["complete"] and image["naturalWidth"] > 0)]
    assert broken == []


def test_figures_are_shown_at_their_natural_size(seen: Seen) -> None:
    for image in seen.images:
        assert image["declaredWidth"] is not None, image["src"]
        # Shown at the declared width unless the page is narrower than the figure.
        assert image["shownWidth"] == pytest.approx(min(image["declaredWidth"], image["room"]), abs=1), image
        if image["src"].endswith(".gif"):
            assert image["declaredWidth"] == image["naturalWidth"]  # an animation at 1:1 pixels


def test_claims_table_has_one_row_per_claim(seen: Seen) -> None:
    assert seen.order["allClaimRows"] == sum(len(result["claims"]) for result in seen.results.values())
    for name, result in seen.results.items():
        assert seen.claim_rows[f"experiment-{name}"] == len(result["claims"]), name
    assert seen.claim_rows["experiment-fake_raise"] == 0


def test_failing_claims_come_first_and_link_to_their_rows(seen: Seen) -> None:
    assert "#experiment-fake_fail-claim-1" in seen.order["failing"]
    assert seen.order["anchorsFound"]
    assert seen.order["attention"] < seen.order["firstFigure"]


def test_sections_by_paper_with_figures_before_claims(seen: Seen) -> None:
    sections = {section["id"]: section for section in seen.order["sections"]}
    assert sections["experiment-trajectories"]["paper"] == "paper-2312.10794"
    # long-context cites 2512.01868 first, then 2510.05554: it sits under the first.
    assert sections["experiment-long-context"]["paper"] == "paper-2512.01868"
    for name in (*REAL, "fake_ok"):
        section = sections[f"experiment-{name}"]
        assert section["figure"] < section["claims"] < section["metrics"], name
    page = (seen.directory / "index.html").read_text()
    assert 'id="paper-2510.05554"' in page and 'href="#experiment-long-context"' in page


def test_every_link_inside_the_page_has_a_target(seen: Seen) -> None:
    assert seen.order["brokenLinks"] == []


def test_console_shows_no_errors(seen: Seen) -> None:
    assert seen.problems == []


def test_screenshot_is_saved_under_the_output_folder(seen: Seen) -> None:
    from PIL import Image

    assert seen.screenshot == seen.directory / SCREENSHOT
    with Image.open(seen.screenshot) as image:
        assert image.format == "PNG"
        assert image.width == WIDTH and image.height > HEIGHT  # the whole page, not one screen
        colours = image.convert("L").getextrema()
    assert colours[1] - colours[0] > 100  # something is drawn on the white page
