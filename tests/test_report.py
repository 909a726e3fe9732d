"""The HTML report's pieces without a browser: numbers, claim statuses, papers, layout."""

from __future__ import annotations

import pathlib
import re

import pytest

from tokenswarm.io.report import (
    ReportEntry,
    claim_status,
    entries_from_directory,
    format_for_display,
    format_number,
    paper_ids,
    summarize,
    tidy_numbers,
    write_report,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0017430000007152557, "0.001743"),
        (-0.08975925322754098, "-0.08976"),
        (2.0, "2"),
        (-2.0000000001, "-2"),
        (1234567.0, "1.235e6"),
        (6.775e-12, "6.775e-12"),
        (float("nan"), "nan"),
        (float("-inf"), "-inf"),
    ],
)
def test_numbers_have_four_significant_digits(value: float, text: str) -> None:
    assert format_number(value) == text


def test_lists_are_formatted_item_by_item() -> None:
    assert format_for_display([0.30709768, -0.5100516743488546]) == "[0.3071, -0.5101]"
    assert format_for_display(list(range(20))).endswith("] (20 values)")


def test_long_decimals_in_text_are_rounded_but_arxiv_ids_are_not() -> None:
    text = "response [0.0017430000007152557, 0.01] at 3.0046; 2408.09523 v1 §6.3"
    assert tidy_numbers(text) == "response [0.001743, 0.01] at 3.0046; 2408.09523 v1 §6.3"


@pytest.mark.parametrize(
    ("claim", "status"),
    [
        ({"passed": True}, "pass"),
        ({"passed": False}, "fail"),
        ({"passed": None}, "inconclusive"),
        ({"passed": None, "status": "inconclusive"}, "inconclusive"),
        ({"passed": False, "status": "FAIL"}, "fail"),
    ],
)
def test_claim_status_follows_status_then_passed(claim: dict, status: str) -> None:
    assert claim_status(claim) == status


def test_paper_ids_keep_versions_and_order() -> None:
    assert paper_ids("2512.01868 §6.3; 2510.05554") == ["2512.01868", "2510.05554"]
    assert paper_ids("2408.09523 v1 (attention)") == ["2408.09523v1"]
    assert paper_ids("2408.09523", context="2408.09523 v2 abstract") == ["2408.09523v2"]
    assert paper_ids("docs/theory/master_pde.md §6") == []


def _entry(name: str, reference: str, claims: list[dict], **result: object) -> ReportEntry:
    return ReportEntry(name=name, title=f"Title of {name}", reference=reference,
                       result={"params": {}, "metrics": {}, "claims": claims, "seconds": 1.0, **result})


def _claim(name: str, passed: bool | None, **more: object) -> dict:
    return {"name": name, "reference": "r", "measured": 0.5, "expected": "< 1", "passed": passed, "detail": "", **more}


def test_summary_counts_three_statuses() -> None:
    entries = [_entry("a", "2312.10794", [_claim("x", True), _claim("y", False), _claim("z", None)])]
    summary = summarize(entries)
    assert (summary.claims_passed, summary.claims_failed, summary.claims_inconclusive) == (1, 1, 1)
    assert summary.text() == "claims: 1 passed, 1 failed, 1 inconclusive; experiments: 1 run, 0 errored"
    assert summarize(entries[:0]).text() == "claims: 0 passed, 0 failed; experiments: 0 run, 0 errored"


def test_report_groups_by_paper_and_lists_problems_first(tmp_path: pathlib.Path) -> None:
    entries = [
        _entry("zeta", "2601.21942 Thm 1; 2604.26898 Thm 1.1", [_claim("ok", True)]),
        _entry("alpha", "2604.26898 Prop. 1.2", [_claim("broken", False), _claim("unsure", None)]),
        # The claim's own paper field wins over the experiment's reference.
        _entry("beta", "no id here", [_claim("tagged", True, paper="2312.10794", where="Fig. 3")]),
        ReportEntry(name="gamma", title="raises", reference="", error="Traceback\nValueError: bad"),
    ]
    page = write_report(entries, tmp_path).read_text()
    order = [page.index(marker) for marker in (
        "Failing claims (1)", "Inconclusive claims (1)", "Experiments that raised (1)", "<h2>Contents",
        'id="paper-2312.10794"', 'id="paper-2601.21942"', 'id="paper-2604.26898"', 'id="paper-other"',
    )]
    assert order == sorted(order)
    sections = re.findall(r'<section class="(?:paper|experiment)" id="([^"]+)"', page)
    assert sections == [
        "paper-2312.10794", "experiment-beta",
        "paper-2601.21942", "experiment-zeta",
        "paper-2604.26898", "experiment-alpha",
        "paper-other", "experiment-gamma",
    ]
    # zeta sits under its first paper and is linked from the second.
    paper_2604 = page[page.index('id="paper-2604.26898"'):page.index('id="experiment-alpha"')]
    assert 'href="#experiment-zeta"' in paper_2604
    assert 'href="#experiment-alpha-claim-0"' in page and 'id="experiment-alpha-claim-0"' in page
    assert "Fig. 3" in page and "ValueError: bad" in page


def test_nested_metrics_are_tables_and_large_ones_collapse(tmp_path: pathlib.Path) -> None:
    small = {"vit": {"x": 0.1234567, "y": 2}}
    large = {f"model{k}": {"value": [1.0, 2.0], "se": [0.1, 0.2]} for k in range(10)}
    records = [{"activation": "tanh", "K1": 0.25}, {"activation": "relu", "K1": 0.5}]
    entry = _entry("m", "2312.10794", [], metrics={"small": small, "large": large, "table": records})
    page = write_report([entry], tmp_path).read_text()
    assert "{" not in page[page.index("Metrics"):page.index("</section>", page.index("Metrics"))]
    assert "<th>vit</th>" in page and "0.1235" in page
    assert "<details><summary>model0, model1" in page and "(40 values)" in page
    assert "<th>activation</th><th>K1</th>" in page


def test_figures_declare_their_display_size(tmp_path: pathlib.Path) -> None:
    from PIL import Image

    (tmp_path / "e").mkdir()
    Image.new("RGB", (750, 300), "white").save(tmp_path / "e" / "fig.png", dpi=(150, 150))
    Image.new("RGB", (420, 470), "white").save(tmp_path / "e" / "anim.gif")
    entry = _entry("e", "2312.10794", [_claim("c", True)], outputs=["fig.png", "anim.gif"])
    entry.outputs = ["e/fig.png", "e/anim.gif"]
    page = write_report([entry], tmp_path).read_text()
    # 750 px at 150 dpi is 5 inches: 600 CSS px at 120 per inch; a GIF is shown 1:1.
    assert 'src="e/fig.png" width="600" height="240"' in page
    assert 'src="e/anim.gif" width="420" height="470"' in page
    assert page.index("<figure") < page.index('<table class="claims"')


def test_entries_from_directory_rebuilds_a_report(tmp_path: pathlib.Path) -> None:
    import json

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "result.json").write_text(json.dumps(
        {"params": {}, "metrics": {}, "claims": [_claim("c", True, reference="2312.10794 §6")],
         "outputs": ["fig.png"], "seconds": 2.0}))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "error.txt").write_text("Traceback\nRuntimeError: boom")
    (tmp_path / "not-a-run").mkdir()
    entries = entries_from_directory(tmp_path, {"a": ("Title A", "2312.10794 §6")})
    assert [(e.name, e.title, e.outputs) for e in entries] == [
        ("a", "Title A", ["a/fig.png"]), ("b", "b", ["b/error.txt"])]
    assert entries[1].error is not None and entries[1].status == "error"
