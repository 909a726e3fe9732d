"""The ``tokenswarm`` command line: ``list``, ``run``, ``reproduce``, ``simulate``, ``bench``, ``sweep``, ``probe``.

Stream discipline: stdout carries only results (tables, the report path, or with
``--json`` exactly one JSON object); messages, warnings, progress bars and anything an
experiment prints go to stderr.

Exit codes: 0 success (failed claims are reported, not an error); 1 an experiment or a
module raised; 2 a usage error (unknown experiment or parameter, bad value), printed as
one paragraph naming the valid choices, without a traceback.

Environment: ``TOKENSWARM_EXTRA_EXPERIMENTS`` -- comma-separated module paths imported
after the built-in experiments, so that out-of-tree or test experiments can register
(e.g. ``TOKENSWARM_EXTRA_EXPERIMENTS=fake_experiments tokenswarm list``).
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import sys
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn

import typer
import typer.core
from rich.console import Console
from rich.table import Table
from rich.text import Text

import tokenswarm
from tokenswarm.io import rundir
from tokenswarm.io.report import (
    ReportEntry,
    format_for_display,
    summarize,
    write_report,
)
from tokenswarm.io.results import atomic_write_text
from tokenswarm.params import UsageError, parse_key_values
from tokenswarm.runtime import budget, log

if TYPE_CHECKING:
    # torch-heavy: imported inside the commands that need them, so that --help, --version
    # and list start in a fraction of the time torch takes to import
    from tokenswarm.experiments import ImportFailure, catalog
    from tokenswarm.io.results import Result

__all__ = ["app", "main", "EXTRA_EXPERIMENTS_ENV"]

EXTRA_EXPERIMENTS_ENV = "TOKENSWARM_EXTRA_EXPERIMENTS"
USAGE_EXIT_CODE = 2
ERROR_EXIT_CODE = 1

class _OneLineErrors(typer.core.TyperGroup):
    """Command-line mistakes caught by click (a malformed number, an unknown option) are
    printed like tokenswarm's own: one ``error:`` line on stderr and exit code 2, instead of
    a usage box of several lines."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except typer.TyperException as error:  # typer's own click: its UsageError and friends
            context = getattr(error, "ctx", None)
            if type(error).__name__ == "NoArgsIsHelpError":
                pass  # typer has already printed the help
            else:
                where = f" (see '{context.command_path} --help')" if context is not None else ""
                _print_error(f"{error.format_message()}{where}")
            sys.exit(getattr(error, "exit_code", USAGE_EXIT_CODE))
        except typer.Abort:
            _print_error("aborted")
            sys.exit(1)
        sys.exit(code or 0)


app = typer.Typer(
    cls=_OneLineErrors,
    name="tokenswarm",
    help="Transformers as interacting particle systems on the sphere: run the papers' experiments.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)

def _print_version(value: bool) -> None:
    if value:
        print(f"tokenswarm {tokenswarm.__version__}")
        raise typer.Exit(0)


@app.callback()
def global_options(
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit.", metavar=""),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only warnings and errors on stderr: no status lines or progress bars.", metavar="")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also debugging detail on stderr.", metavar="")] = False,
) -> None:
    """Transformers as interacting particle systems on the sphere: run the papers' experiments."""
    if quiet and verbose:
        _usage_failure("--quiet and --verbose cannot be combined")
    log.configure(log.QUIET if quiet else log.VERBOSE if verbose else log.NORMAL)


DeviceOption = Annotated[str, typer.Option(help="torch device: cpu, cuda, cuda:N or mps.")]
DtypeOption = Annotated[Literal["float32", "float64"], typer.Option(help="floating-point precision.")]
SeedOption = Annotated[int, typer.Option(help="master seed (streams are derived from it).")]
QuickOption = Annotated[
    bool, typer.Option("--quick/--full", help="reduced sizes for a fast check, or the full default sizes.", metavar="")
]
JsonOption = Annotated[bool, typer.Option("--json", help="print exactly one JSON object on stdout.", metavar="")]
ForceOption = Annotated[
    bool,
    typer.Option("--force", help="run even when the estimated memory or step count exceeds the limits.", metavar=""),
]
ParamOption = Annotated[
    list[str] | None,
    typer.Option(
        "-p",
        "--param",
        metavar="KEY=VALUE",
        help="parameter override KEY=VALUE (repeatable); lists 1,2,3; ranges START:STOP:STEP.",
    ),
]


# --------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


def _stdout() -> Console:
    return Console(highlight=False)


def _print_error(message: str) -> None:
    # Plain print rather than rich: the message must not be re-wrapped or styled, since
    # scripts and tests search it for the valid choices it names.
    # Control characters of echoed user input are escaped: they can neither break the
    # message into several lines nor drive the terminal.
    print(f"error: {rundir.printable(message)}", file=sys.stderr)


def _usage_failure(message: str) -> NoReturn:
    _print_error(message)
    raise typer.Exit(USAGE_EXIT_CODE)


@contextlib.contextmanager
def _usage_errors(import_failures: Sequence[ImportFailure] = ()) -> Iterator[None]:
    """Turn a UsageError into the one-paragraph message and exit code 2."""
    try:
        yield
    except UsageError as error:
        message = str(error)
        if import_failures and type(error).__name__ == "UnknownExperimentError":
            broken = "; ".join(failure.summary() for failure in import_failures)
            message += f" (note: some experiment modules failed to import: {broken})"
        _usage_failure(message)


@contextlib.contextmanager
def _resource_errors() -> Iterator[None]:
    """A run refused by its resource estimate, out of memory anyway, numerically out of
    its range (a non-finite state) or needing an optional package that is not installed:
    one line, exit 2.

    The estimates (:mod:`tokenswarm.runtime.budget`) refuse before allocating; an allocation that
    still fails (an estimate that was too low) is reported the same way rather than as a
    traceback, since the remedy is the user's: a smaller size.
    """
    from tokenswarm.runtime.optional import MissingDependencyError

    try:
        yield
    except (budget.ResourceLimitError, MissingDependencyError) as error:
        _usage_failure(str(error))
    except FloatingPointError as error:
        # Non-finite states (NonFiniteStateError) or a numerical scheme leaving its domain:
        # the parameters asked for more than the method can do; the message names the remedy.
        _usage_failure(f"the computation left its valid range: {str(error).strip().splitlines()[0]}")
    except (MemoryError, RuntimeError) as error:
        if not _is_out_of_memory(error):
            raise
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        _usage_failure(f"out of memory ({first_line}); choose a smaller size")


def _is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, MemoryError):
        return True
    text = str(error)
    return "can't allocate memory" in text or "out of memory" in text.lower()


def _extra_modules(environment: Mapping[str, str]) -> list[str]:
    return [module.strip() for module in environment.get(EXTRA_EXPERIMENTS_ENV, "").split(",") if module.strip()]


def _load_experiments(name: str | None = None) -> list[ImportFailure]:
    """Import the experiment modules (all, or what ``name`` needs); warn about broken ones.

    One broken module must not make every other experiment unusable, so failures are
    printed to stderr instead of aborting: ``reproduce`` turns them into error rows and
    ``run`` mentions them if the requested name turns out to be unknown.
    """
    from tokenswarm.experiments import load_all, load_for

    extra = _extra_modules(os.environ)
    failures = load_all(extra, strict=False) if name is None else load_for(name, extra, strict=False)
    _report_import_failures(failures)
    return failures


def _report_import_failures(failures: Sequence[ImportFailure]) -> None:
    for failure in failures:
        _print_error(f"experiment module failed to import: {failure.summary()}")


def _print_traceback(context: str) -> None:
    print(f"error: {context}", file=sys.stderr)
    traceback.print_exc(file=sys.stderr)


# --------------------------------------------------------------------------------------
# list
# --------------------------------------------------------------------------------------


PaperOption = Annotated[
    str | None,
    typer.Option("--paper", metavar="ID", help="only experiments and claims citing this arXiv id (e.g. 2312.10794)."),
]


@app.command("list")
def list_command(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="also list every parameter and claim.", metavar="")] = False,
    paper: PaperOption = None,
    json_output: JsonOption = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="print the README's experiments table.", metavar="")] = False,
) -> None:
    """List the experiments, one line each, with their paper reference.

    With --paper ID, only the experiments citing that paper and the claims they check for it.
    With --json, one JSON list of experiments, each with its papers and claims.
    """
    if paper is not None or json_output or markdown:
        _list_with_claims(verbose=verbose, paper=paper, json_output=json_output, markdown=markdown)
        return
    from tokenswarm.experiments import catalog  # reads an index: no torch

    experiments, failures = catalog.listing(_extra_modules(os.environ))
    _report_import_failures(failures)
    if not experiments:
        log.logger.warning("no experiments are registered")
        return
    width = max(len(experiment.name) for experiment in experiments)
    for experiment in experiments:
        print(f"{experiment.name:<{width}}  {experiment.title}  [{experiment.reference}]")
        if verbose:
            for spec in experiment.specs:
                help_text = f" -- {spec.help}" if spec.help else ""
                quick_text = f" (quick: {format_for_display(experiment.quick[spec.name])})" if spec.name in experiment.quick else ""
                print(f"{'':<{width}}    {spec.describe()}{quick_text}{help_text}")


def _list_with_claims(*, verbose: bool, paper: str | None, json_output: bool, markdown: bool) -> None:
    """``list`` with claims (--paper, --json, --markdown): imports every experiment module."""
    from tokenswarm.experiments import registry
    from tokenswarm.io.refs import PAPER_ID

    _load_experiments()
    experiments = [registry.get(name) for name in registry.names()]
    if paper is not None:
        with _usage_errors([]):
            if not PAPER_ID.match(paper):
                raise UsageError(f"--paper needs an arXiv id such as 2312.10794, got {paper!r}")
        experiments = [experiment for experiment in experiments if experiment.cites(paper)]
    listed = [_experiment_listing(experiment, paper) for experiment in experiments]
    if markdown:
        sys.stdout.write(registry.markdown_table(experiments))
        return
    if json_output:
        sys.stdout.write(json.dumps(listed, ensure_ascii=False) + "\n")
        return
    if not experiments:
        log.logger.warning("no experiments are registered" if paper is None else f"no experiment cites {paper}")
        return
    width = max(len(experiment.name) for experiment in experiments)
    for experiment, listing in zip(experiments, listed):
        print(f"{experiment.name:<{width}}  {experiment.title}  [{experiment.reference}]")
        for claim in listing["claims"]:
            print(f"{'':<{width}}    claim: {claim['name']}  [{claim['reference']}]")


def _experiment_listing(experiment: Any, paper: str | None) -> dict[str, Any]:
    """An experiment for ``list --json``: name, title, references and the claims it checks."""
    rules = experiment.claims.rules if experiment.claims is not None else []
    if paper is not None:
        rules = [rule for rule in rules if any(ref.paper == paper or ref.base_id == paper for ref in rule.refs)]
    return {
        "name": experiment.name,
        "title": experiment.title,
        "reference": experiment.reference,
        "papers": [ref.to_json_dict() for ref in experiment.refs],
        "claims": [rule.to_json_dict() for rule in rules],
    }


# --------------------------------------------------------------------------------------
# robustness
# --------------------------------------------------------------------------------------


@app.command("robustness")
def robustness_command(
    only: Annotated[str | None, typer.Option(help="comma-separated experiment names (default: all).")] = None,
    seeds: Annotated[int, typer.Option(min=1, max=1000, help="seeds per parameter set.")] = 5,
    full: Annotated[bool, typer.Option("--full", help="full sizes instead of the quick ones (hours).")] = False,
    json_output: JsonOption = False,
) -> None:
    """Run every claim at its defaults and at other parameter sets, over several seeds.

    Prints, per claim and parameter set, how many runs passed, failed, were inconclusive, were
    refused (an unsupported combination, with its reason) or raised. Exit 1 if any run raised.
    """
    from tokenswarm import robustness  # imported on use: only this command needs it
    from tokenswarm.experiments import registry
    from tokenswarm.runtime.progress import progress_bar

    _load_experiments()
    with _usage_errors([]):
        names = registry.names() if only is None else [name.strip() for name in only.split(",") if name.strip()]
        for name in names:
            registry.get(name)
    with progress_bar(None, "robustness") as bar:
        outcomes = robustness.run_suite(
            names, range(seeds), quick=not full,
            on_outcome=lambda outcome: bar.update(description=f"robustness: {outcome.experiment} [{outcome.variant}]"),
        )
    tallies = robustness.tally(outcomes)
    if json_output:
        document = {"totals": robustness.summary_counts(outcomes), "seeds": seeds, "quick": not full,
                    "claims": [{"experiment": t.experiment, "claim": t.claim, "parameters": t.variant,
                                "counts": dict(t.counts), "example": t.example} for t in tallies]}
        sys.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(robustness.markdown(tallies))
        print(", ".join(f"{count} {status}" for status, count in sorted(robustness.summary_counts(outcomes).items())))
    if any(outcome.status == "error" for outcome in outcomes):
        raise typer.Exit(ERROR_EXIT_CODE)


# --------------------------------------------------------------------------------------
# check
# --------------------------------------------------------------------------------------


@app.command("check")
def check_command(
    directory: Annotated[str, typer.Argument(metavar="DIR", help="a run directory (or a reproduce report).")],
    json_output: JsonOption = False,
) -> None:
    """Re-derive every claim of a finished run from its data.zarr and compare with its result.json.

    Exit 0 when they agree, 1 when they differ (the data or the summary was altered), 2 when
    DIR is not a readable run.
    """
    from tokenswarm.io.check import check_tree  # imported on use: only this command needs it

    with _usage_errors([]):
        checks = check_tree(directory)
    agree = all(check.agree for check in checks)
    if json_output:
        document = {"agree": agree, "runs": [check.to_json_dict() for check in checks]}
        sys.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")
    else:
        for check in checks:
            differing = [claim for claim in check.claims if not claim.agree]
            verdict = "agree" if not differing else f"{len(differing)} of {len(check.claims)} claims differ"
            print(f"{check.directory}: {check.experiment}: {len(check.claims)} claims re-derived from the data, {verdict}")
            for claim in differing:
                for difference in claim.differences:
                    print(f"  {claim.name}: {difference}")
    if not agree:
        raise typer.Exit(1)


# --------------------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------------------


def _find_listed(name: str) -> catalog.ExperimentInfo:
    from tokenswarm.experiments import catalog

    experiments, failures = catalog.listing(_extra_modules(os.environ))
    _report_import_failures(failures)
    for experiment in experiments:
        if experiment.name == name:
            return experiment
    from tokenswarm.experiments import registry

    failures = _load_experiments(name)  # then the registry's message names every valid experiment
    with _usage_errors(failures):
        registry.get(name)
    raise AssertionError(f"experiment {name!r} is registered but not listed")  # pragma: no cover


def _print_experiment_parameters(experiment: catalog.ExperimentInfo) -> None:
    """One entry per parameter, wrapped between words to the terminal's width (a table
    of six columns would break names and choice lists mid-word at 80 columns)."""
    import shutil

    width = max(shutil.get_terminal_size().columns, 40)
    lines = [f"{experiment.name}: {experiment.title} [{experiment.reference}]"]
    lines.append("parameters (-p KEY=VALUE; --quick applies the quick values):")
    for spec in experiment.specs:
        details = [spec.type_text()]
        if constraints := spec.constraint_text():
            details.append(constraints)
        details.append(f"default {format_for_display(spec.default)}")
        if spec.name in experiment.quick:
            details.append(f"quick {format_for_display(experiment.quick[spec.name])}")
        lines.append(_wrap(f"{spec.name}: {'; '.join(details)}", width, "  ", "      "))
        if spec.help:
            lines.append(_wrap(spec.help, width, "      ", "      "))
    print("\n".join(lines))


def _wrap(text: str, width: int, first: str, rest: str) -> str:
    import textwrap

    return textwrap.fill(
        text, width, initial_indent=first, subsequent_indent=rest, break_long_words=False, break_on_hyphens=False
    )


@app.command("run", context_settings={"help_option_names": []})
def run_command(
    context: typer.Context,
    name: Annotated[str | None, typer.Argument(help="experiment name (see 'tokenswarm list').")] = None,
    param: ParamOption = None,
    quick: QuickOption = False,
    seed: SeedOption = 0,
    device: DeviceOption = "cpu",
    dtype: DtypeOption = "float64",
    out: Annotated[str | None, typer.Option(help="output directory (default ./runs/NAME).")] = None,
    json_output: JsonOption = False,
    force: ForceOption = False,
    show_help: Annotated[
        bool, typer.Option("--help", "-h", help="show this message (and NAME's parameters) and exit.", metavar="")
    ] = False,
) -> None:
    """Run one experiment and write result.json, data.zarr and figures to its output directory."""
    if show_help:
        # A custom --help: the built-in one is eager and exits before NAME is known,
        # but the useful help for `run NAME` is NAME's parameters (from the catalog: no torch).
        print(context.get_help())
        if name is not None:
            _print_experiment_parameters(_find_listed(name))
        raise typer.Exit(0)
    from tokenswarm.experiments import registry
    from tokenswarm.runtime.progress import progress_bar

    failures = _load_experiments(name)
    if name is None:
        _usage_failure(
            "missing experiment name; valid experiments: "
            + (", ".join(registry.names()) or "none are registered")
        )
    with _usage_errors(failures), budget.forced(force):
        overrides = parse_key_values(param or [])
        # Validate everything up front so that a usage mistake exits 2 before any work,
        # and so that a UsageError raised inside the experiment is treated as a bug.
        registry.prepare(name, overrides, quick=quick, dtype=dtype)
        registry.parse_device(device)
        registry.check_seed(seed)
        # Built in a partial sibling and swapped in whole (tokenswarm.io.rundir).
        stage = rundir.RunDirectory(rundir.parse_out(out, pathlib.Path("runs") / name)).prepare()
    try:
        # Keep stdout for the result only: anything the experiment prints goes to stderr.
        # The outer bar (elapsed time) hosts the solvers' nested bars, which show an ETA.
        with contextlib.redirect_stdout(sys.stderr), stage as partial, budget.forced(force), \
                _resource_errors(), progress_bar(None, f"run {name}"):
            result, outputs = registry.run_experiment(
                name, overrides, quick=quick, seed=seed, device=device, dtype=dtype, out_dir=partial
            )
            outputs = [stage.final_path(path) for path in outputs]
    except typer.Exit:  # a refusal already reported in one line
        raise
    except rundir.RunDirError as error:
        _usage_failure(str(error))
    except Exception:  # noqa: BLE001 - report any experiment failure with its traceback
        _print_traceback(f"experiment '{name}' raised an exception")
        raise typer.Exit(ERROR_EXIT_CODE) from None
    if json_output:
        sys.stdout.write(json.dumps(result.to_json_dict(outputs), ensure_ascii=False, allow_nan=False) + "\n")
        sys.stdout.flush()
    else:
        _print_result_tables(result, outputs)


def _print_result_tables(result: Result, outputs: Sequence[str]) -> None:
    console = _stdout()
    summary = result.to_json_dict(list(outputs))
    metrics = Table(title=f"{result.experiment}: metrics", title_justify="left")
    metrics.add_column("metric")
    metrics.add_column("value")
    for key, value in summary["metrics"].items():
        metrics.add_row(key, format_for_display(value))
    console.print(metrics)
    claims = Table(title=f"{result.experiment}: claims", title_justify="left")
    for column in ("claim", "reference", "measured", "expected", "status"):
        claims.add_column(column)
    for claim in summary["claims"]:
        status = _status_text(claim)
        claims.add_row(
            claim["name"],
            claim["reference"],
            format_for_display(claim["measured"]),
            format_for_display(claim["expected"]),
            status,
        )
    console.print(claims)
    passed = sum(1 for claim in summary["claims"] if claim["passed"] is True)
    undecided = sum(1 for claim in summary["claims"] if claim["passed"] is None)
    out_dir = pathlib.Path(outputs[-1]).parent if outputs else None
    inconclusive = f" ({undecided} inconclusive)" if undecided else ""
    console.print(
        f"{passed}/{len(summary['claims'])} claims passed{inconclusive} in {result.seconds:.2f} s; outputs in {out_dir}",
        soft_wrap=True,
    )


_STATUS_STYLES = {"pass": ("PASS", "bold green"), "fail": ("FAIL", "bold red"),
                  "inconclusive": ("INCONCLUSIVE", "bold yellow")}


def _claim_status(claim: Mapping[str, Any]) -> str:
    """A saved claim's status; files written before statuses existed have only ``passed``."""
    passed = claim.get("passed")
    return claim.get("status") or ("inconclusive" if passed is None else "pass" if passed else "fail")


def _status_text(claim: Mapping[str, Any]) -> Text:
    label, style = _STATUS_STYLES[_claim_status(claim)]
    return Text(label, style=style)


# --------------------------------------------------------------------------------------
# reproduce
# --------------------------------------------------------------------------------------


@app.command("reproduce")
def reproduce_command(
    quick: QuickOption = False,
    out: Annotated[str, typer.Option(help="report directory.")] = "tokenswarm-report",
    seed: SeedOption = 0,
    device: DeviceOption = "cpu",
    dtype: DtypeOption = "float64",
    only: Annotated[str | None, typer.Option(help="comma-separated experiment names to run.")] = None,
    force: ForceOption = False,
) -> None:
    """Run every experiment (each into OUT/NAME/) and write the HTML report OUT/index.html.

    An experiment that raises is recorded as an error (exit code 1) and the others still
    run; failed claims are reported but do not change the exit code.
    """
    from tokenswarm.experiments import registry
    from tokenswarm.runtime.progress import progress_bar

    failures = _load_experiments()
    with _usage_errors(failures):
        registry.parse_device(device)
        registry.parse_dtype(dtype)
        registry.check_seed(seed)
        if only is not None:
            selected = [item.strip() for item in only.split(",") if item.strip()]
            if not selected:
                raise UsageError(f"--only needs experiment names; valid experiments: {', '.join(registry.names())}")
            for name in selected:
                registry.get(name)
            selected = list(dict.fromkeys(selected))
        else:
            selected = registry.names()
        # The whole report is built in a partial sibling and swapped in whole at the end,
        # so a finished report is never lost or mixed with a newer, unfinished one.
        stage = rundir.RunDirectory(rundir.parse_out(out, pathlib.Path("tokenswarm-report"))).prepare()
    entries: list[ReportEntry] = []
    if only is None:
        entries.extend(_import_failure_entry(failure) for failure in failures)
    started = time.perf_counter()
    try:
        with stage as report_dir, budget.forced(force), progress_bar(len(selected), "reproduce") as bar:
            for index, name in enumerate(selected, start=1):
                log.logger.info("[%d/%d] %s", index, len(selected), name)
                bar.update(description=f"reproduce: {name}")
                entries.append(_reproduce_one(name, report_dir, quick=quick, seed=seed, device=device, dtype=dtype))
                bar.advance()
            settings = {"quick": quick, "seed": seed, "device": device, "dtype": dtype}
            report = pathlib.Path(stage.final_path(write_report(entries, report_dir, settings=settings)))
    except rundir.RunDirError as error:
        _usage_failure(str(error))
    summary = summarize(entries)
    print(f"report: {report}")
    elapsed = time.perf_counter() - started
    print(f"{summary.text()}; wall time {elapsed:.0f} s ({elapsed / 60:.1f} min, {'quick' if quick else 'full'} sizes)")
    for entry in entries:
        if entry.error is not None:
            last_line = entry.error.strip().splitlines()[-1] if entry.error.strip() else "error"
            print(f"  ERROR {entry.name}: {last_line}")
        for claim in entry.claims:
            status = _claim_status(claim)
            if status != "pass":
                print(
                    f"  {'FAIL' if status == 'fail' else 'INCONCLUSIVE'}  {entry.name}: {claim.get('name')} "
                    f"(measured {format_for_display(claim.get('measured'))}, "
                    f"expected {format_for_display(claim.get('expected'))}; {claim.get('reference')})"
                )
    if summary.experiments_errored:
        raise typer.Exit(ERROR_EXIT_CODE)


def _reproduce_one(name: str, report_dir: pathlib.Path, **settings: Any) -> ReportEntry:
    from tokenswarm.experiments import registry

    experiment = registry.get(name)
    out_dir = report_dir / name
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(sys.stderr):
            result, outputs = registry.run_experiment(name, {}, out_dir=out_dir, **settings)
        # everything in the fresh sub-directory was written by this run
        rundir.write_marker(out_dir, [child.name for child in out_dir.iterdir()])
    except Exception:  # noqa: BLE001 - one failing experiment must not stop the others
        error = traceback.format_exc()
        print(f"error: experiment '{name}' raised an exception:\n{error}", file=sys.stderr)
        out_dir.mkdir(parents=True, exist_ok=True)
        error_file = out_dir / "error.txt"
        atomic_write_text(error_file, error)
        rundir.write_marker(out_dir, [child.name for child in out_dir.iterdir()])
        return ReportEntry(
            name=name,
            title=experiment.title,
            reference=experiment.reference,
            error=error,
            outputs=[error_file.relative_to(report_dir).as_posix()],
            seconds=time.perf_counter() - start,
        )
    relative = [pathlib.Path(path).relative_to(out_dir).as_posix() for path in outputs]
    return ReportEntry(
        name=name,
        title=experiment.title,
        reference=experiment.reference,
        result=result.to_json_dict(relative),
        outputs=[pathlib.Path(os.path.relpath(path, report_dir)).as_posix() for path in outputs],
    )


def _import_failure_entry(failure: ImportFailure) -> ReportEntry:
    return ReportEntry(
        name=failure.module.rsplit(".", 1)[-1],
        title=f"module {failure.module} failed to import",
        reference="",
        error=failure.traceback,
    )


# --------------------------------------------------------------------------------------
# simulate and bench (implemented by their own modules)
# --------------------------------------------------------------------------------------


@app.command("simulate")
def simulate_command(
    model: Annotated[Literal["sa", "usa"], typer.Option(help="softmax (sa) or unnormalised (usa) attention.")] = "sa",
    n: Annotated[int, typer.Option(help="number of tokens.")] = 32,
    d: Annotated[int, typer.Option(help="dimension (tokens on S^{d-1}).")] = 3,
    beta: Annotated[float, typer.Option(help="inverse temperature.")] = 1.0,
    t: Annotated[float, typer.Option(help="final time (depth).")] = 10.0,
    solver: Annotated[str, typer.Option(help="integrator, e.g. rk4.")] = "rk4",
    step: Annotated[float, typer.Option(help="time step.")] = 0.05,
    value: Annotated[Literal["identity", "minus_identity"], typer.Option(help="value matrix V.")] = "identity",
    seed: SeedOption = 0,
    device: DeviceOption = "cpu",
    dtype: DtypeOption = "float64",
    out: Annotated[str | None, typer.Option(help="output directory (default ./runs/simulate).")] = None,
    json_output: JsonOption = False,
    force: ForceOption = False,
) -> None:
    """Integrate one particle system and save its trajectory."""
    from tokenswarm.cli import (
        simulate as simulate_cli,  # imported on use: only this command needs it
    )

    with _usage_errors(), budget.forced(force), _resource_errors():
        code = simulate_cli.simulate_command(
            model=model,
            n=n,
            d=d,
            beta=beta,
            t=t,
            solver=solver,
            step=step,
            value=value,
            seed=seed,
            device=device,
            dtype=dtype,
            out=out,
            json_output=json_output,
        )
    raise typer.Exit(code or 0)


@app.command("bench")
def bench_command(
    target: Annotated[str, typer.Argument(help="what to benchmark, e.g. field.")],
    param: ParamOption = None,
    json_output: JsonOption = False,
    device: DeviceOption = "cpu",
) -> None:
    """Time a component on this machine."""
    from tokenswarm.cli import bench  # imported on use: only this command needs it

    with _usage_errors():
        overrides = parse_key_values(param or [])
        code = bench.bench_command(target, overrides, json_output, device)
    raise typer.Exit(code or 0)


@app.command("sweep")
def sweep_command(
    name: Annotated[str, typer.Argument(help="experiment name (see 'tokenswarm list').")],
    store: Annotated[str, typer.Option(help="sweep store: sweep.json, points/ID/ run directories, metrics.parquet.")],
    grid: Annotated[
        list[str] | None,
        typer.Option("--grid", help="grid axis KEY=V1,V2,... or KEY=START:STOP:STEP (repeatable; points are the product)."),
    ] = None,
    param: ParamOption = None,
    quick: QuickOption = False,
    seed: SeedOption = 0,
    device: DeviceOption = "cpu",
    dtype: DtypeOption = "float64",
    workers: Annotated[int | None, typer.Option(help="local dask cluster of N worker processes (default: one per core).")] = None,
    scheduler: Annotated[str | None, typer.Option(help="address of a running dask scheduler, e.g. tcp://host:8786.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Run an experiment at every grid point on dask.distributed; re-running resumes it."""
    from tokenswarm.cli import sweep  # imported on use: only this command needs dask

    failures = _load_experiments(name)
    with _usage_errors(failures):
        code = sweep.sweep_command(
            name, grid or [], param or [], store=store, quick=quick, seed=seed, device=device, dtype=dtype,
            workers=workers, scheduler=scheduler, json_output=json_output, extra_modules=_extra_modules(os.environ),
        )
    raise typer.Exit(code)


# --------------------------------------------------------------------------------------
# probe (implemented in tokenswarm.probe)
# --------------------------------------------------------------------------------------


def _probe_texts(text: Sequence[str] | None, file: pathlib.Path | None) -> list[str]:
    from tokenswarm.probe import ProbeError, load_corpus

    texts = list(text or [])
    if file is not None:
        try:
            content = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ProbeError(f"cannot read --file {file}: {getattr(error, 'strerror', None) or error}") from None
        lines = [line.strip() for line in content.splitlines() if line.strip()]
        if not lines:
            raise ProbeError(f"--file {file} contains no text (one text per non-empty line)")
        texts.extend(lines)
    return texts or load_corpus()


def _print_probe_table(summary: Mapping[str, Any], outputs: Sequence[str]) -> None:
    metrics = summary["metrics"]
    console = _stdout()
    title = (
        f"{summary['model']} ({summary['model_type'] or 'unknown type'}): {metrics['layers']} layers, "
        f"{metrics['heads']} heads, d = {metrics['hidden_size']}; {metrics['texts']} text(s), "
        f"{sum(metrics['n_tokens'])} tokens"
    )
    table = Table(title=title, title_justify="left")
    for column in ("state", "mean cosine", "mean norm", "attention entropy", "row-sum error"):
        table.add_column(column, justify="left" if column == "state" else "right")
    for index, (cosine, norm) in enumerate(zip(metrics["mean_cosine"], metrics["mean_norm"])):
        entropy = error = ""
        if index > 0:
            entropy = f"{metrics['attention_entropy'][index - 1]:.4f}"
            error = f"{metrics['attention_row_sum_error_per_layer'][index - 1]:.1e}"
        table.add_row("embeddings" if index == 0 else f"layer {index}", f"{cosine:.4f}", f"{norm:.3f}", entropy, error)
    console.print(table)
    if metrics.get("truncated"):
        console.print(f"truncated to the model's context: texts {metrics['truncated']}")
    if outputs:
        console.print(f"saved: {', '.join(outputs)}", soft_wrap=True)


@app.command("probe")
def probe_command(
    path: Annotated[
        str,
        typer.Argument(help="local Hugging Face model directory (config.json + safetensors), or 'minilm' for the bundled all-MiniLM-L6-v2."),
    ],
    text: Annotated[
        list[str] | None, typer.Option("--text", "-t", help="a text to probe (repeatable).")
    ] = None,
    file: Annotated[
        pathlib.Path | None, typer.Option("--file", "-f", help="UTF-8 file, one text per non-empty line.")
    ] = None,
    allow_pickle: Annotated[
        bool, typer.Option("--allow-pickle", help="also load pickle checkpoints (pytorch_model.bin...); they can run code.", metavar="")
    ] = False,
    out: Annotated[
        pathlib.Path | None, typer.Option(help="save hidden states and attentions (probe.safetensors + probe.json) here.")
    ] = None,
    device: DeviceOption = "cpu",
    json_output: JsonOption = False,
) -> None:
    """Hidden states, attention maps and per-layer metrics of a real Transformer on texts.

    Without --text/--file the bundled corpus (32 short English texts) is used. Broken or
    unsafe model directories exit with code 2 and a one-line message.
    """
    from tokenswarm import probe  # imported on use: only this command needs it
    from tokenswarm.experiments import registry

    with _usage_errors():
        registry.parse_device(device)
        texts = _probe_texts(text, file)
        model_path = probe.resolve_model_path(path)
        with contextlib.redirect_stdout(sys.stderr):
            result = probe.run_probe(model_path, texts, allow_pickle=allow_pickle, device=device)
        try:
            outputs = probe.save_probe(result, out) if out is not None else []
        except OSError as error:
            raise probe.ProbeError(f"cannot write to --out {out}: {error.strerror or error}") from None
    summary = result.to_json_dict(outputs)
    if json_output:
        sys.stdout.write(json.dumps(summary, ensure_ascii=False, allow_nan=False) + "\n")
        sys.stdout.flush()
    else:
        _print_probe_table(summary, outputs)


def main() -> None:
    """Console-script entry point (``tokenswarm``, ``python -m tokenswarm``).

    SIGINT/SIGTERM end the process with exit code 130/143 and one ``error:`` line; an
    output directory being written is discarded and the previous one left as it was.
    """
    rundir.exit_on_interrupt(lambda: app(prog_name="tokenswarm"))
