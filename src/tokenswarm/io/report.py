"""A static, self-contained HTML report of a set of experiment runs.

The report is one ``index.html`` next to the experiments' output directories. It uses no
external assets (the CSS is inline, figures are referenced by relative path), so the
whole directory can be archived or served as-is. Layout: a summary of claims
(passed / failed / experiments errored), one table of every claim with its paper
reference, then a section per experiment with parameters, metrics, claims and figures.
"""

from __future__ import annotations

import datetime
import html
import math
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import tokenswarm
from tokenswarm.io.results import atomic_write_text

__all__ = ["ReportEntry", "ReportSummary", "summarize", "write_report", "format_for_display"]

REPORT_FILE = "index.html"
IMAGE_SUFFIXES = frozenset({".png", ".gif", ".jpg", ".jpeg", ".svg", ".webp"})

#: Lists longer than this are shown as head ... tail so a trajectory stored as a metric
#: cannot turn the report into megabytes of numbers.
MAX_LIST_ITEMS = 8
MAX_TEXT_LENGTH = 400


@dataclass
class ReportEntry:
    """One experiment in the report.

    Attributes:
        name: registered name (also its output sub-directory).
        title: human title.
        reference: paper reference of the experiment.
        result: the ``result.json`` dictionary, or ``None`` if the run errored.
        error: the error text (traceback) if the run raised, else ``None``.
        outputs: output files relative to the report directory, e.g. ``"name/fig.png"``.
        seconds: wall time; taken from ``result`` when not given.
    """

    name: str
    title: str
    reference: str
    result: Mapping[str, Any] | None = None
    error: str | None = None
    outputs: list[str] = field(default_factory=list)
    seconds: float | None = None

    @property
    def claims(self) -> list[Mapping[str, Any]]:
        return list(self.result.get("claims", [])) if self.result else []

    @property
    def wall_seconds(self) -> float | None:
        if self.seconds is not None:
            return self.seconds
        if self.result and isinstance(self.result.get("seconds"), (int, float)):
            return float(self.result["seconds"])
        return None


@dataclass(frozen=True)
class ReportSummary:
    experiments: int
    claims_passed: int
    claims_failed: int
    experiments_errored: int

    def text(self) -> str:
        """``"claims: 12 passed, 1 failed; experiments: 5 run, 1 errored"``."""
        return (
            f"claims: {self.claims_passed} passed, {self.claims_failed} failed; "
            f"experiments: {self.experiments} run, {self.experiments_errored} errored"
        )


def summarize(entries: Iterable[ReportEntry]) -> ReportSummary:
    entries = list(entries)
    claims = [claim for entry in entries for claim in entry.claims]
    passed = sum(1 for claim in claims if claim.get("passed") is True)
    return ReportSummary(
        experiments=len(entries),
        claims_passed=passed,
        claims_failed=len(claims) - passed,
        experiments_errored=sum(1 for entry in entries if entry.error is not None),
    )


def write_report(
    entries: Sequence[ReportEntry],
    out_dir: str | pathlib.Path,
    *,
    settings: Mapping[str, Any] | None = None,
    title: str = "tokenswarm report",
) -> pathlib.Path:
    """Write ``out_dir/index.html`` (atomically) and return its path.

    Args:
        entries: experiments in display order.
        out_dir: report directory; entry outputs are relative to it.
        settings: run-wide settings shown in the header (seed, device, quick...).
        title: page title.
    """
    directory = pathlib.Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    page = _page(list(entries), dict(settings or {}), title)
    target = directory / REPORT_FILE
    atomic_write_text(target, page)
    return target


# --------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------


def format_for_display(value: Any, *, max_items: int = MAX_LIST_ITEMS) -> str:
    """Short text for a JSON value: numbers to 6 digits, long lists as head ... tail."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT_LENGTH else value[: MAX_TEXT_LENGTH - 1] + "…"
    if isinstance(value, Mapping):
        inner = ", ".join(f"{key}: {format_for_display(item, max_items=max_items)}" for key, item in value.items())
        return "{" + inner + "}"
    if isinstance(value, (list, tuple)):
        if len(value) <= max_items:
            return "[" + ", ".join(format_for_display(item, max_items=max_items) for item in value) + "]"
        head = [format_for_display(item, max_items=3) for item in value[: max_items - 2]]
        tail = [format_for_display(item, max_items=3) for item in value[-2:]]
        return "[" + ", ".join(head) + ", …, " + ", ".join(tail) + f"] ({len(value)} values)"
    return str(value)


def _escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _url(relative_path: str) -> str:
    return quote(pathlib.PurePath(relative_path).as_posix(), safe="/")


def _anchor(name: str) -> str:
    return "experiment-" + "".join(char if char.isalnum() or char in "-_" else "-" for char in name)


def _status_badge(status: str) -> str:
    return f'<span class="badge {status.lower().replace(" ", "-")}">{_escape(status)}</span>'


def _seconds(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.2f} s"


def _key_value_table(values: Mapping[str, Any], empty: str) -> str:
    if not values:
        return f'<p class="muted">{_escape(empty)}</p>'
    rows = "".join(
        f"<tr><th>{_escape(key)}</th><td>{_escape(format_for_display(value))}</td></tr>"
        for key, value in values.items()
    )
    return f'<table class="kv">{rows}</table>'


def _claims_table(rows: list[tuple[ReportEntry, Mapping[str, Any] | None]], with_experiment: bool) -> str:
    header = (
        ("<th>experiment</th>" if with_experiment else "")
        + "<th>claim</th><th>reference</th><th>measured</th><th>expected</th><th>status</th><th>detail</th>"
    )
    body = []
    for entry, claim in rows:
        experiment_cell = (
            f'<td><a href="#{_anchor(entry.name)}">{_escape(entry.name)}</a></td>' if with_experiment else ""
        )
        if claim is None:  # the experiment raised: one error row instead of its claims
            # The last line of a traceback is the exception type and message.
            last_line = entry.error.strip().splitlines()[-1] if entry.error and entry.error.strip() else "error"
            body.append(
                f'<tr class="error">{experiment_cell}<td colspan="4">experiment raised an error</td>'
                f"<td>{_status_badge('ERROR')}</td><td>{_escape(format_for_display(last_line))}</td></tr>"
            )
            continue
        status = "PASS" if claim.get("passed") is True else "FAIL"
        body.append(
            f'<tr class="{status.lower()}">{experiment_cell}'
            f"<td>{_escape(claim.get('name', ''))}</td>"
            f"<td>{_escape(claim.get('reference', ''))}</td>"
            f"<td>{_escape(format_for_display(claim.get('measured')))}</td>"
            f"<td>{_escape(format_for_display(claim.get('expected')))}</td>"
            f"<td>{_status_badge(status)}</td>"
            f"<td>{_escape(claim.get('detail', ''))}</td></tr>"
        )
    if not body:
        return '<p class="muted">No claims.</p>'
    return f'<table class="claims"><thead><tr>{header}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _claim_rows(entry: ReportEntry) -> list[tuple[ReportEntry, Mapping[str, Any] | None]]:
    if entry.error is not None:
        return [(entry, None)]
    return [(entry, claim) for claim in entry.claims]


def _figures(outputs: Sequence[str]) -> str:
    images = [path for path in outputs if pathlib.PurePath(path).suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        return ""
    figures = "".join(
        f'<figure><a href="{_url(path)}"><img src="{_url(path)}" alt="{_escape(pathlib.PurePath(path).stem)}" '
        f'loading="lazy"></a><figcaption>{_escape(pathlib.PurePath(path).name)}</figcaption></figure>'
        for path in images
    )
    return f'<h3>Figures</h3><div class="figures">{figures}</div>'


def _other_outputs(outputs: Sequence[str]) -> str:
    others = [path for path in outputs if pathlib.PurePath(path).suffix.lower() not in IMAGE_SUFFIXES]
    if not others:
        return ""
    links = "".join(f'<li><a href="{_url(path)}">{_escape(path)}</a></li>' for path in others)
    return f'<h3>Files</h3><ul class="files">{links}</ul>'


def _section(entry: ReportEntry) -> str:
    if entry.error is not None:
        status = _status_badge("ERROR")
    elif not entry.claims:
        status = _status_badge("NO CLAIMS")
    elif all(claim.get("passed") is True for claim in entry.claims):
        status = _status_badge("PASS")
    else:
        status = _status_badge("FAIL")
    parts = [
        f'<section id="{_anchor(entry.name)}">',
        f"<h2>{_escape(entry.title)} <code>{_escape(entry.name)}</code> {status}</h2>",
        f'<p class="muted">{_escape(entry.reference)} · {_seconds(entry.wall_seconds)}</p>',
    ]
    if entry.error is not None:
        parts.append(f"<h3>Error</h3><pre>{_escape(entry.error)}</pre>")
    if entry.result is not None:
        parts.append("<h3>Parameters</h3>" + _key_value_table(entry.result.get("params", {}), "No parameters."))
        parts.append("<h3>Metrics</h3>" + _key_value_table(entry.result.get("metrics", {}), "No metrics."))
        parts.append("<h3>Claims</h3>" + _claims_table(_claim_rows(entry), with_experiment=False))
    parts.append(_figures(entry.outputs))
    parts.append(_other_outputs(entry.outputs))
    parts.append("</section>")
    return "\n".join(part for part in parts if part)


def _page(entries: list[ReportEntry], settings: dict[str, Any], title: str) -> str:
    summary = summarize(entries)
    generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    settings_text = " · ".join(f"{key} {format_for_display(value)}" for key, value in settings.items())
    total_seconds = sum(entry.wall_seconds or 0.0 for entry in entries)
    all_rows = [row for entry in entries for row in _claim_rows(entry)]
    index = "".join(
        f'<li><a href="#{_anchor(entry.name)}">{_escape(entry.name)}</a> — {_escape(entry.title)}</li>'
        for entry in entries
    )
    summary_class = "bad" if summary.claims_failed or summary.experiments_errored else "good"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_escape(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>{_escape(title)}</h1>
<p class="muted">tokenswarm {_escape(tokenswarm.__version__)} · generated {generated} · total {_seconds(total_seconds)}{(" · " + _escape(settings_text)) if settings_text else ""}</p>
<div class="summary {summary_class}">
<span class="count pass">{summary.claims_passed} passed</span>
<span class="count fail">{summary.claims_failed} failed</span>
<span class="count error">{summary.experiments_errored} errored</span>
<span>{_escape(summary.text())}</span>
</div>
</header>
<nav><h2>Experiments</h2><ul>{index}</ul></nav>
<h2>All claims</h2>
{_claims_table(all_rows, with_experiment=True)}
{"".join(_section(entry) for entry in entries)}
</body>
</html>
"""


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1200px;
       margin: 2rem auto; padding: 0 1rem; color: #1d2330; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; }
h2 { border-bottom: 1px solid #d8dde6; padding-bottom: 0.2rem; margin-top: 2.2rem; }
h3 { margin-bottom: 0.4rem; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; }
pre { background: #f5f6f8; padding: 0.8rem; overflow-x: auto; font-size: 0.85rem; }
.muted { color: #6a7385; }
table { border-collapse: collapse; width: 100%; font-size: 0.92rem; margin-bottom: 0.8rem; }
th, td { border: 1px solid #d8dde6; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
thead th { background: #f0f2f5; }
table.kv th { width: 28%; background: #fafbfc; font-weight: 600; }
td { word-break: break-word; }
tr.fail td { background: #fdf1f1; }
tr.error td { background: #fff6e5; }
.badge { display: inline-block; padding: 0.05rem 0.45rem; border-radius: 0.3rem; font-size: 0.8rem;
         font-weight: 700; color: white; vertical-align: middle; }
.badge.pass { background: #2e8540; } .badge.fail { background: #c62828; } .badge.error { background: #e08a00; }
.badge.no-claims { background: #6a7385; }
.summary { display: flex; gap: 1rem; align-items: center; padding: 0.7rem 1rem; border-radius: 0.4rem;
           margin: 1rem 0; flex-wrap: wrap; }
.summary.good { background: #eaf6ec; } .summary.bad { background: #fdf1f1; }
.count { font-weight: 700; } .count.pass { color: #2e8540; } .count.fail { color: #c62828; }
.count.error { color: #b36b00; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; max-width: 100%; }
figure img { max-width: 560px; width: 100%; border: 1px solid #d8dde6; }
figcaption { font-size: 0.85rem; color: #6a7385; }
"""
