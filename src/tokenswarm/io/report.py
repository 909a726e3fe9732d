"""A static, self-contained HTML report of a set of experiment runs.

The report is one ``index.html`` next to the experiments' output directories. It uses no
external assets and no script (the CSS is inline, figures are referenced by relative path),
so the whole directory can be archived or opened from disk as-is.

Layout, in the order a reader needs it:

1. the counts of claims that pass, fail and are inconclusive, then the failing and the
   inconclusive claims (and experiments that raised) as short lists linking to their
   experiment;
2. one section per paper (the first arXiv id an experiment cites; an experiment citing
   several papers is linked from the others), each with its experiments;
3. per experiment: figures and animations first, at their natural size, then a compact
   claims table, then metrics (nested dictionaries as small tables, large ones collapsed)
   and parameters.

Claims may carry ``status`` (``"pass" | "fail" | "inconclusive"``), ``paper`` and ``where``;
without ``status`` it follows ``passed`` (true: pass, false: fail, null: inconclusive), and
without ``paper`` the first arXiv id in the claim's or the experiment's reference is used.
"""

from __future__ import annotations

import datetime
import html
import json
import math
import pathlib
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import tokenswarm
from tokenswarm.io.results import atomic_write_text

__all__ = [
    "ReportEntry",
    "ReportSummary",
    "claim_status",
    "entries_from_directory",
    "format_for_display",
    "format_number",
    "paper_ids",
    "summarize",
    "tidy_numbers",
    "write_report",
]

REPORT_FILE = "index.html"
IMAGE_SUFFIXES = frozenset({".png", ".gif", ".jpg", ".jpeg", ".svg", ".webp"})
STATUSES = ("pass", "fail", "inconclusive")

#: Lists longer than this are shown as head ... tail so a trajectory stored as a metric
#: cannot turn the report into megabytes of numbers.
MAX_LIST_ITEMS = 8
MAX_TEXT_LENGTH = 400
#: Significant digits of floats in the report and the CLI.
DIGITS = 4
#: A nested dictionary or table with more leaf values than this is collapsed.
MAX_OPEN_VALUES = 12
#: Figures are shown at this many CSS pixels per inch of their design size (Jupyter uses 100),
#: so their 8-9 pt text reads at 13-15 px; a 12-inch-wide figure fills the page.
CSS_PIXELS_PER_INCH = 120

#: Short titles of the papers the experiments cite, in display order. An id not listed
#: here gets a section titled by its id, after these.
PAPERS: dict[str, str] = {
    "2312.10794": "Geshkovski, Letrouit, Polyanskiy, Rigollet: A mathematical perspective on Transformers",
    "2512.01868": "Rigollet: The mean-field dynamics of Transformers",
    "2601.21942": "Fedorov, Sander, Elie, Marion, Laurière: Clustering in deep stochastic Transformers",
    "2604.26898": "Agazzi, Bruno, Mosig García, Saviozzi, Romito: Stochastic scaling limits and "
    "synchronization by noise in deep Transformers",
    "2408.09523v2": "Zhang, Zhou: Transformers as a master PDE; residual connections and layer "
    "normalization as stabilizers",
    "2408.09523v1": "Zhang: Interpretable Transformers through PDEs and information theory",
    "2510.05554": "Critical attention scaling in long-context Transformers",
}
OTHER_PAPER = "other"

_ARXIV_ID = re.compile(r"(?<![\d.])(\d{4}\.\d{4,5})(?:\s*v(\d+))?(?![\d])")


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

    @property
    def papers(self) -> list[str]:
        """Paper ids this experiment cites, its own (first) paper first."""
        found: list[str] = []
        listed = self.result.get("papers") if self.result else None
        for item in listed or []:
            text = item.get("paper", "") if isinstance(item, Mapping) else str(item)
            found.extend(paper_ids(text, context=self.reference))
        found.extend(paper_ids(self.reference))
        for claim in self.claims:
            found.extend(_claim_papers(claim, self.reference))
        return list(dict.fromkeys(found))

    @property
    def status(self) -> str:
        """``"error"``, ``"no claims"``, ``"fail"`` (any claim fails), ``"inconclusive"`` or ``"pass"``."""
        if self.error is not None:
            return "error"
        statuses = {claim_status(claim) for claim in self.claims}
        if not statuses:
            return "no claims"
        return next(status for status in ("fail", "inconclusive", "pass") if status in statuses)


@dataclass(frozen=True)
class ReportSummary:
    experiments: int
    claims_passed: int
    claims_failed: int
    experiments_errored: int
    claims_inconclusive: int = 0

    def text(self) -> str:
        """``"claims: 12 passed, 1 failed; experiments: 5 run, 1 errored"``.

        Inconclusive claims are counted after the failed ones when there are any.
        """
        inconclusive = f", {self.claims_inconclusive} inconclusive" if self.claims_inconclusive else ""
        return (
            f"claims: {self.claims_passed} passed, {self.claims_failed} failed{inconclusive}; "
            f"experiments: {self.experiments} run, {self.experiments_errored} errored"
        )


def claim_status(claim: Mapping[str, Any]) -> str:
    """``"pass"``, ``"fail"`` or ``"inconclusive"``: the claim's ``status``, else from ``passed``."""
    status = claim.get("status")
    if isinstance(status, str) and status.lower() in STATUSES:
        return status.lower()
    passed = claim.get("passed")
    if passed is True:
        return "pass"
    if passed is False:
        return "fail"
    return "inconclusive"


def paper_ids(text: str, *, context: str = "") -> list[str]:
    """arXiv ids in ``text`` in order, e.g. ``["2312.10794", "2408.09523v1"]``.

    A version is kept when written (``2408.09523 v1`` or ``2408.09523v1``): the two versions
    of 2408.09523 are different papers. An id without a version takes the version that
    ``context`` gives the same id, if any.
    """
    versions = {match.group(1): match.group(2) for match in _ARXIV_ID.finditer(context) if match.group(2)}
    ids = []
    for match in _ARXIV_ID.finditer(text or ""):
        number, version = match.group(1), match.group(2) or versions.get(match.group(1))
        ids.append(f"{number}v{version}" if version else number)
    return list(dict.fromkeys(ids))


def _claim_papers(claim: Mapping[str, Any], experiment_reference: str) -> list[str]:
    context = f"{claim.get('reference', '')} {experiment_reference}"
    return paper_ids(str(claim.get("paper") or ""), context=context) or paper_ids(str(claim.get("reference", "")))


def summarize(entries: Iterable[ReportEntry]) -> ReportSummary:
    entries = list(entries)
    statuses = [claim_status(claim) for entry in entries for claim in entry.claims]
    return ReportSummary(
        experiments=len(entries),
        claims_passed=statuses.count("pass"),
        claims_failed=statuses.count("fail"),
        experiments_errored=sum(1 for entry in entries if entry.error is not None),
        claims_inconclusive=statuses.count("inconclusive"),
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
        entries: experiments in run order (the report groups them by paper).
        out_dir: report directory; entry outputs are relative to it.
        settings: run-wide settings shown in the header (seed, device, quick...).
        title: page title.
    """
    directory = pathlib.Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    page = _page(list(entries), dict(settings or {}), title, directory)
    target = directory / REPORT_FILE
    atomic_write_text(target, page)
    return target


def entries_from_directory(
    directory: str | pathlib.Path, titles: Mapping[str, tuple[str, str]] | None = None
) -> list[ReportEntry]:
    """Report entries for an existing ``reproduce`` directory (one sub-directory per experiment).

    Args:
        directory: the report directory.
        titles: ``{name: (title, reference)}``; a name not given is titled by itself and its
            reference is taken from its claims.

    Returns:
        One entry per sub-directory holding ``result.json`` or ``error.txt``, by name.
    """
    root = pathlib.Path(directory)
    entries = []
    for child in sorted(path for path in root.iterdir() if path.is_dir()):
        result_file, error_file = child / "result.json", child / "error.txt"
        if not (result_file.exists() or error_file.exists()):
            continue
        result = json.loads(result_file.read_text()) if result_file.exists() else None
        title, reference = (titles or {}).get(child.name, (child.name, ""))
        if not reference and result:
            reference = "; ".join(dict.fromkeys(str(claim.get("reference", "")) for claim in result.get("claims", [])))
        outputs = [f"{child.name}/{name}" for name in (result or {}).get("outputs", [])] if result else []
        entries.append(
            ReportEntry(
                name=child.name,
                title=title,
                reference=reference,
                result=result,
                error=error_file.read_text() if result is None else None,
                outputs=outputs or ([f"{child.name}/error.txt"] if result is None else []),
            )
        )
    return entries


# --------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------


def format_number(value: float, digits: int = DIGITS) -> str:
    """``value`` to ``digits`` significant digits: ``0.001743``, ``-0.08976``, ``1.235e+06``.

    Integral values print without a fraction (``2``), not-a-number and infinities as
    ``nan``, ``inf`` and ``-inf``.
    """
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 10**digits:
        return str(int(value))
    text = f"{value:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def format_for_display(value: Any, *, max_items: int = MAX_LIST_ITEMS, digits: int = DIGITS) -> str:
    """Short text for a JSON value: floats to ``digits`` significant digits, long lists as head ... tail."""

    def inner(item: Any, items: int) -> str:
        return format_for_display(item, max_items=items, digits=digits)

    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_number(value, digits)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        value = tidy_numbers(value, digits=digits)
        return value if len(value) <= MAX_TEXT_LENGTH else value[: MAX_TEXT_LENGTH - 1] + "…"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{key}: {inner(item, max_items)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        if len(value) <= max_items:
            return "[" + ", ".join(inner(item, max_items) for item in value) + "]"
        head = [inner(item, 3) for item in value[: max_items - 2]]
        tail = [inner(item, 3) for item in value[-2:]]
        return "[" + ", ".join(head) + ", …, " + ", ".join(tail) + f"] ({len(value)} values)"
    return str(value)


_LONG_DECIMAL = re.compile(r"(?<![\w.])-?\d+\.\d+(?:[eE][-+]?\d+)?(?![\w.])")


def tidy_numbers(text: str, *, digits: int = DIGITS) -> str:
    """``text`` with every decimal number of more than 6 significant digits (float noise such
    as ``0.0017430000007152557``) rounded to ``digits``; shorter numbers and arXiv ids are
    left as written."""

    def shorten(match: re.Match[str]) -> str:
        written = match.group(0)
        if _ARXIV_ID.fullmatch(written):  # 2408.09523 is a paper, not a measurement
            return written
        mantissa = re.split("[eE]", written)[0]
        significant = mantissa.replace("-", "").replace(".", "").lstrip("0")
        return format_number(float(written), digits) if len(significant) > 6 else written

    return _LONG_DECIMAL.sub(shorten, text)


def _escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _url(relative_path: str) -> str:
    return quote(pathlib.PurePath(relative_path).as_posix(), safe="/")


def _slug(text: str) -> str:
    return "".join(char if char.isalnum() or char in "-_." else "-" for char in text)


def _anchor(name: str) -> str:
    return "experiment-" + _slug(name)


def _paper_anchor(paper: str) -> str:
    return "paper-" + _slug(paper)


def _paper_title(paper: str) -> str:
    if paper == OTHER_PAPER:
        return "Other experiments"
    return PAPERS.get(paper, f"arXiv {paper}")


def _paper_label(paper: str) -> str:
    """``arXiv 2408.09523 v1`` for a section heading."""
    if paper == OTHER_PAPER:
        return ""
    number, _, version = paper.partition("v")
    return f"arXiv {number}" + (f" v{version}" if version else "")


def _badge(status: str) -> str:
    return f'<span class="badge {_slug(status.lower())}">{_escape(status.upper())}</span>'


def _seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _number_html(value: Any) -> str:
    """A formatted value with break opportunities only between list items, never inside a number."""
    text = format_for_display(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f'<span class="num">{_escape(text)}</span>'
    return _escape(text)


# --------------------------------------------------------------------------------------
# Values: scalars inline, dictionaries and lists of records as small tables
# --------------------------------------------------------------------------------------


def _leaf_count(value: Any) -> int:
    if isinstance(value, Mapping):
        return sum(_leaf_count(item) for item in value.values())
    if isinstance(value, (list, tuple)) and value:
        return sum(_leaf_count(item) for item in value)
    return 1


def _is_records(value: Any) -> bool:
    """A non-empty list of dictionaries with the same keys: shown as a table."""
    return (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(isinstance(item, Mapping) for item in value)
        and all(list(item) == list(value[0]) for item in value)
    )


def _value_html(value: Any) -> str:
    if isinstance(value, Mapping) and value:
        table = _mapping_table(value)
    elif _is_records(value):
        table = _records_table(value)
    else:
        return _number_html(value)
    count = _leaf_count(value)
    if count <= MAX_OPEN_VALUES:
        return table
    keys = ", ".join(str(key) for key in value) if isinstance(value, Mapping) else f"{len(value)} rows"
    summary = keys if len(keys) <= 80 else keys[:79] + "…"
    return f"<details><summary>{_escape(summary)} <span class=\"muted\">({count} values)</span></summary>{table}</details>"


def _mapping_table(values: Mapping[str, Any], css_class: str = "kv nested") -> str:
    rows = "".join(f"<tr><th>{_escape(key)}</th><td>{_value_html(value)}</td></tr>" for key, value in values.items())
    return f'<table class="{css_class}">{rows}</table>'


def _records_table(records: Sequence[Mapping[str, Any]]) -> str:
    header = "".join(f"<th>{_escape(key)}</th>" for key in records[0])
    rows = "".join(
        "<tr>" + "".join(f"<td>{_value_html(value)}</td>" for value in record.values()) + "</tr>" for record in records
    )
    return f'<table class="records"><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table>'


def _key_value_section(label: str, values: Mapping[str, Any], *, open_limit: int) -> str:
    if not values:
        return ""
    opened = " open" if _leaf_count(values) <= open_limit else ""
    return (
        f'<details class="block"{opened}><summary>{_escape(label)} '
        f'<span class="muted">({len(values)})</span></summary>{_mapping_table(values, "kv")}</details>'
    )


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------


def _image_size(path: pathlib.Path) -> tuple[int, int] | None:
    """Display size in CSS pixels: a PNG's pixels at its stated resolution, a GIF's pixels."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(1 << 16)
    except OSError:
        return None
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        scale = 1.0
        physical = head.find(b"pHYs")
        if physical > 0 and len(head) >= physical + 13 and head[physical + 12] == 1:  # unit: metre
            per_metre = struct.unpack(">I", head[physical + 4 : physical + 8])[0]
            dpi = per_metre * 0.0254
            if dpi > CSS_PIXELS_PER_INCH * 1.05:
                scale = CSS_PIXELS_PER_INCH / dpi
        return round(width * scale), round(height * scale)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return struct.unpack("<HH", head[6:10])
    return None


def _figures(outputs: Sequence[str], directory: pathlib.Path) -> str:
    images = [path for path in outputs if pathlib.PurePath(path).suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        return ""
    figures = []
    for path in images:
        size = _image_size(directory / path)
        dimensions = f' width="{size[0]}" height="{size[1]}"' if size else ""
        kind = "animation" if pathlib.PurePath(path).suffix.lower() == ".gif" else "figure"
        figures.append(
            f'<figure class="{kind}"><a href="{_url(path)}"><img src="{_url(path)}"{dimensions} '
            f'alt="{_escape(pathlib.PurePath(path).stem)}"></a>'
            f"<figcaption>{_escape(pathlib.PurePath(path).name)}</figcaption></figure>"
        )
    return f'<div class="figures">{"".join(figures)}</div>'


def _other_outputs(outputs: Sequence[str]) -> str:
    others = [path for path in outputs if pathlib.PurePath(path).suffix.lower() not in IMAGE_SUFFIXES]
    if not others:
        return ""
    links = " · ".join(f'<a href="{_url(path)}">{_escape(pathlib.PurePath(path).name)}</a>' for path in others)
    return f'<p class="files muted">Files: {links}</p>'


# --------------------------------------------------------------------------------------
# Claims
# --------------------------------------------------------------------------------------


def _claim_source(claim: Mapping[str, Any]) -> str:
    parts = [str(claim.get(key) or "") for key in ("where", "reference")]
    return " · ".join(part for part in parts if part)


def _claims_table(entry: ReportEntry) -> str:
    if not entry.claims:
        return "" if entry.error is not None else '<p class="muted">No claims.</p>'
    rows = []
    for index, claim in enumerate(entry.claims):
        status = claim_status(claim)
        source = _claim_source(claim)
        detail = tidy_numbers(str(claim.get("detail") or ""))
        notes = "".join(
            f'<div class="{css}">{_escape(text)}</div>' for css, text in (("source", source), ("detail", detail)) if text
        )
        rows.append(
            f'<tr class="claim {status}" id="{_anchor(entry.name)}-claim-{index}">'
            f"<td>{_badge(status)}</td>"
            f'<td><div class="claim-name">{_escape(claim.get("name", ""))}</div>{notes}</td>'
            f'<td class="value">{_value_html(claim.get("measured"))}</td>'
            f'<td class="value">{_escape(format_for_display(claim.get("expected")))}</td></tr>'
        )
    return (
        '<table class="claims"><thead><tr><th>status</th><th>claim</th><th>measured</th><th>expected</th></tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )


#: In the lists at the top, an experiment shows this many of its failing (or inconclusive)
#: claims; the rest are one click away.
SHOWN_PER_EXPERIMENT = 3


def _attention_list(entries: list[ReportEntry]) -> str:
    """The failing and inconclusive claims and the errors, grouped by experiment, each
    linking to its claim or experiment."""
    titles = {"fail": "Failing claims", "inconclusive": "Inconclusive claims"}
    parts = []
    for status, heading in titles.items():
        groups, total = [], 0
        for entry in entries:
            items = []
            for index, claim in enumerate(entry.claims):
                if claim_status(claim) != status:
                    continue
                measured = format_for_display(claim.get("measured"), max_items=4)
                expected = format_for_display(claim.get("expected"))
                items.append(
                    f'<li><a href="#{_anchor(entry.name)}-claim-{index}">{_escape(claim.get("name", ""))}</a> '
                    f'<span class="muted">measured {_escape(measured)}; expected {_escape(expected)}</span></li>'
                )
            if not items:
                continue
            total += len(items)
            shown, rest = items[:SHOWN_PER_EXPERIMENT], items[SHOWN_PER_EXPERIMENT:]
            more = (
                f"<li><details><summary>{len(rest)} more</summary><ul>{''.join(rest)}</ul></details></li>" if rest else ""
            )
            groups.append(
                f'<li><a href="#{_anchor(entry.name)}">{_escape(entry.title)}</a> <code>{_escape(entry.name)}</code> '
                f'<span class="muted">({len(items)} of {len(entry.claims)} claims)</span>'
                f"<ul>{''.join(shown)}{more}</ul></li>"
            )
        if groups:
            parts.append(f'<div class="attention {status}"><h2>{heading} ({total})</h2><ul>{"".join(groups)}</ul></div>')
    errors = [
        f'<li><a href="#{_anchor(entry.name)}">{_escape(entry.name)}</a>: '
        f"{_escape(format_for_display(_last_line(entry.error)))}</li>"
        for entry in entries
        if entry.error is not None
    ]
    if errors:
        parts.append(f'<div class="attention error"><h2>Experiments that raised ({len(errors)})</h2><ul>{"".join(errors)}</ul></div>')
    return "".join(parts)


def _last_line(error: str) -> str:
    """The last line of a traceback: the exception type and message."""
    return error.strip().splitlines()[-1] if error.strip() else "error"


# --------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------


def _experiment_section(entry: ReportEntry, directory: pathlib.Path, home: str) -> str:
    counts = [claim_status(claim) for claim in entry.claims]
    tally = " · ".join(f"{counts.count(status)} {status}" for status in STATUSES if counts.count(status))
    others = [paper for paper in entry.papers if paper != home]
    also = (
        " · also "
        + ", ".join(f'<a href="#{_paper_anchor(paper)}">{_escape(_paper_label(paper))}</a>' for paper in others)
        if others
        else ""
    )
    parts = [
        f'<section class="experiment" id="{_anchor(entry.name)}">',
        f"<h3>{_escape(entry.title)} <code>{_escape(entry.name)}</code> {_badge(entry.status)}</h3>",
        (
            f'<p class="muted">{_escape(entry.reference)}{also} · {_seconds(entry.wall_seconds)}'
            f"{(' · ' + _escape(tally)) if tally else ''}</p>"
        ),
    ]
    if entry.error is not None:
        parts.append(f"<details class=\"block\" open><summary>Error</summary><pre>{_escape(entry.error)}</pre></details>")
    parts.append(_figures(entry.outputs, directory))
    parts.append(_claims_table(entry))
    if entry.result is not None:
        parts.append(_key_value_section("Metrics", entry.result.get("metrics", {}), open_limit=MAX_OPEN_VALUES))
        parts.append(_key_value_section("Parameters", entry.result.get("params", {}), open_limit=0))
    parts.append(_other_outputs(entry.outputs))
    parts.append("</section>")
    return "\n".join(part for part in parts if part)


def _home_paper(entry: ReportEntry) -> str:
    papers = entry.papers
    return papers[0] if papers else OTHER_PAPER


def _paper_order(papers: Iterable[str]) -> list[str]:
    known = list(PAPERS)
    found = list(dict.fromkeys(papers))
    ranked = [paper for paper in known if paper in found]
    ranked += [paper for paper in found if paper not in known and paper != OTHER_PAPER]
    return ranked + ([OTHER_PAPER] if OTHER_PAPER in found else [])


def _group_by_paper(entries: list[ReportEntry]) -> list[tuple[str, list[ReportEntry], list[ReportEntry]]]:
    """``(paper, experiments placed under it, experiments placed elsewhere that cite it)``."""
    homes = {entry.name: _home_paper(entry) for entry in entries}
    papers = _paper_order(list(homes.values()) + [paper for entry in entries for paper in entry.papers])
    groups = []
    for paper in papers:
        own = [entry for entry in entries if homes[entry.name] == paper]
        cited = [entry for entry in entries if homes[entry.name] != paper and paper in entry.papers]
        groups.append((paper, own, cited))
    return groups


def _paper_section(paper: str, own: list[ReportEntry], cited: list[ReportEntry], directory: pathlib.Path) -> str:
    label = _paper_label(paper)
    heading = f"{_escape(_paper_title(paper))}" + (f' <span class="muted">{_escape(label)}</span>' if label else "")
    also = (
        f'<p class="muted">{"Also tested" if own else "Tested"} in: '
        + ", ".join(f'<a href="#{_anchor(entry.name)}">{_escape(entry.title)}</a>' for entry in cited)
        + "</p>"
        if cited
        else ""
    )
    body = "\n".join(_experiment_section(entry, directory, paper) for entry in own)
    return f'<section class="paper" id="{_paper_anchor(paper)}"><h2>{heading}</h2>{also}\n{body}</section>'


def _contents(groups: list[tuple[str, list[ReportEntry], list[ReportEntry]]]) -> str:
    items = []
    for paper, own, cited in groups:
        experiments = "".join(
            f'<li><a href="#{_anchor(entry.name)}">{_escape(entry.title)}</a> {_badge(entry.status)}</li>'
            for entry in own
        ) + "".join(
            f'<li class="cited">also: <a href="#{_anchor(entry.name)}">{_escape(entry.title)}</a></li>' for entry in cited
        )
        label = _paper_label(paper)
        label_html = f' <span class="muted">{_escape(label)}</span>' if label else ""
        items.append(
            f'<li><a href="#{_paper_anchor(paper)}">{_escape(_paper_title(paper))}</a>{label_html}'
            f"<ul>{experiments}</ul></li>"
        )
    return f'<nav><h2>Contents</h2><ul class="contents">{"".join(items)}</ul></nav>'


def _page(entries: list[ReportEntry], settings: dict[str, Any], title: str, directory: pathlib.Path) -> str:
    summary = summarize(entries)
    generated = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    settings_text = " · ".join(
        ("quick sizes" if value else "full sizes") if key == "quick" and isinstance(value, bool)
        else f"{key} {format_for_display(value)}"
        for key, value in settings.items()
    )
    total_seconds = sum(entry.wall_seconds or 0.0 for entry in entries)
    groups = _group_by_paper(entries)
    quick_note = (
        '<p class="quick"><strong>Quick sizes.</strong> These runs use the reduced sizes of '
        "<code>--quick</code>: they check that every experiment runs end to end, and their numbers "
        "are indicative only. The paper-size results come from <code>reproduce --full</code>.</p>"
        if settings.get("quick") is True
        else ""
    )
    counts = "".join(
        f'<span class="count {css}"><b>{count}</b> {label}</span>'
        for css, count, label in (
            ("pass", summary.claims_passed, "passed"),
            ("fail", summary.claims_failed, "failed"),
            ("inconclusive", summary.claims_inconclusive, "inconclusive"),
            ("error", summary.experiments_errored, "experiments raised"),
        )
    )
    summary_class = "bad" if summary.claims_failed or summary.experiments_errored else "good"
    sections = "\n".join(_paper_section(paper, own, cited, directory) for paper, own, cited in groups)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{_escape(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>{_escape(title)}</h1>
<p class="muted">tokenswarm {_escape(tokenswarm.__version__)} · generated {generated} · wall time {_seconds(total_seconds)} · {summary.experiments} experiments{(" · " + _escape(settings_text)) if settings_text else ""}</p>
{quick_note}
<div class="summary {summary_class}">{counts}<span class="muted">{_escape(summary.text())}</span></div>
{_attention_list(entries)}
</header>
{_contents(groups)}
{sections}
</body>
</html>
"""


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1480px;
       margin: 1.5rem auto; padding: 0 1rem; color: #1d2330; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; }
h2 { border-bottom: 2px solid #d8dde6; padding-bottom: 0.2rem; margin-top: 2.4rem; }
h3 { margin: 2rem 0 0.2rem; padding-top: 0.8rem; border-top: 1px solid #e6e9ef; }
a { color: #1f5fae; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; }
h2 .muted { font-size: 0.7em; font-weight: normal; }
h3 code { font-size: 0.8em; color: #6a7385; font-weight: normal; }
pre { background: #f5f6f8; padding: 0.8rem; overflow-x: auto; font-size: 0.85rem; }
.muted { color: #6a7385; }
.num { white-space: nowrap; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 0.4rem 0 0.8rem; }
th, td { border: 1px solid #d8dde6; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
td { overflow-wrap: break-word; }
thead th { background: #f0f2f5; }
table.kv > tbody > tr > th, table.kv > tr > th { background: #fafbfc; font-weight: 600; white-space: nowrap; }
table.nested, table.records { font-size: 0.85rem; margin: 0; }
table.claims { width: 100%; }
table.claims td.value { white-space: nowrap; max-width: 22rem; overflow-wrap: anywhere; white-space: normal; }
table.claims td:first-child { width: 1%; }
.claim-name { font-weight: 600; }
.source, .detail { font-size: 0.82rem; color: #5a6375; }
tr.fail td { background: #fdf1f1; } tr.inconclusive td { background: #fff8e6; }
.badge { display: inline-block; padding: 0.05rem 0.45rem; border-radius: 0.3rem; font-size: 0.75rem;
         font-weight: 700; color: white; vertical-align: middle; white-space: nowrap; }
.badge.pass { background: #2e8540; } .badge.fail { background: #c62828; }
.badge.inconclusive { background: #a86a00; } .badge.error { background: #6d2a8c; }
.badge.no-claims { background: #6a7385; }
.summary { display: flex; gap: 1.4rem; align-items: baseline; padding: 0.7rem 1rem; border-radius: 0.4rem;
           margin: 1rem 0; flex-wrap: wrap; }
.summary.good { background: #eaf6ec; } .summary.bad { background: #fdf1f1; }
.count b { font-size: 1.6rem; } .count.pass { color: #2e8540; } .count.fail { color: #c62828; }
.count.inconclusive { color: #a86a00; } .count.error { color: #6d2a8c; }
.quick { background: #fff8e6; border-left: 4px solid #a86a00; padding: 0.5rem 0.8rem; }
.attention h2 { font-size: 1.1rem; margin: 1rem 0 0.3rem; border: none; }
.attention ul { margin: 0; padding-left: 1.3rem; }
.attention ul ul { font-size: 0.9rem; }
.attention code { font-size: 0.8em; color: #6a7385; }
.attention li { margin: 0.15rem 0; }
.attention.fail h2 { color: #c62828; } .attention.inconclusive h2 { color: #a86a00; }
.attention.error h2 { color: #6d2a8c; }
nav ul.contents { columns: 2 26rem; padding-left: 1.2rem; }
nav ul.contents > li { break-inside: avoid; margin-bottom: 0.5rem; }
nav ul ul { padding-left: 1rem; font-size: 0.9rem; }
nav li.cited { color: #6a7385; font-style: italic; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem 1.5rem; align-items: flex-start; margin: 0.6rem 0; }
figure { margin: 0; max-width: 100%; }
figure img { display: block; max-width: 100%; height: auto; }
figure.animation img { border: 1px solid #e6e9ef; }
figcaption { font-size: 0.8rem; color: #6a7385; }
details.block { margin: 0.4rem 0; }
details.block > summary { font-weight: 600; cursor: pointer; }
details > summary { cursor: pointer; }
.files { font-size: 0.85rem; }
"""
