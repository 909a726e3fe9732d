"""Output directories that are replaced whole or not at all.

Every command that writes a directory (``run --out``, ``reproduce --out``,
``simulate --out``) goes through :class:`RunDirectory`::

    stage = RunDirectory(target).prepare()   # validate; create the partial sibling
    with stage as partial:                   # write everything into ``partial``
        ...
    # here ``target`` holds the new run (swapped in with renames)

Rules:

* A run is built in a hidden sibling ``.NAME.partial-<pid>-<random>`` of the target,
  never in the target itself, so nothing of a finished run is ever rewritten in place.
* When the block finishes, the old target (if any) is renamed aside to
  ``.NAME.old-<pid>-<random>``, the partial directory is renamed to ``NAME`` and the old
  one is deleted: a reader sees the complete old run or the complete new one.
* If the block raises, the partial directory is removed and the target is left as it
  was. On SIGINT/SIGTERM the handler (installed by the CLI for the whole process, and by
  :class:`RunDirectory` while it builds) removes the partial directories being built,
  writes one ``error: interrupted by SIG...`` line to stderr and ends the process with
  exit code 130/143 (``os._exit``: raising an exception from a signal handler can abort
  the process when it unwinds through C++ frames, e.g. during ``import torch``). During
  the two renames of a swap the signal is held back and handled right after, so the
  target is always the complete old or the complete new run. A SIGKILL cannot be
  handled: it leaves the target intact and a partial directory behind, which the next
  run into the same target removes (only partial/old directories carrying the marker
  and naming a process that no longer exists).
* The marker file ``.tokenswarm-run`` (JSON: tokenswarm version and the top-level
  entries tokenswarm wrote) tells tokenswarm's directories from anybody else's. A target
  may be replaced only if it does not exist, is empty, or is a tokenswarm directory
  holding nothing but what tokenswarm wrote (recursively into sub-directories with a
  marker). Directories written before the marker existed are recognised by their
  ``result.json`` (a run: its ``outputs`` list what it wrote) or ``index.html`` plus such
  runs (a report). Anything else is refused with a :class:`RunDirError` (exit 2): nothing
  tokenswarm did not write is ever deleted.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pathlib
import re
import secrets
import shutil
import signal
import stat
import threading
from collections.abc import Iterable, Iterator
from types import FrameType, TracebackType
from typing import Any

from tokenswarm.params import UsageError

__all__ = [
    "MARKER",
    "RunDirError",
    "RunDirectory",
    "exit_on_interrupt",
    "foreign_entries",
    "install_signal_handlers",
    "interruption_message",
    "is_tokenswarm_directory",
    "parse_out",
    "printable",
    "write_marker",
    "written_entries",
]

MARKER = ".tokenswarm-run"
_RESULT_FILE = "result.json"
_REPORT_FILE = "index.html"
_SUMMARY_KEYS = {"experiment", "params", "metrics", "claims", "outputs", "seconds"}
#: Temporary names that older tokenswarm versions could leave inside a run directory.
_LEGACY_TEMPORARY = re.compile(r"^\.(data\.zarr\.(.+\.tmp|old-.+)|.+\.[0-9a-f]{16}\.tmp)$")
_SIBLING = re.compile(r"^\.(?P<name>.+)\.(?P<kind>partial|old)-(?P<pid>\d+)-[0-9a-f]+$")
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunDirError(UsageError):
    """An output directory that tokenswarm must not or cannot write (exit code 2)."""


#: Builds in progress in this process (their partial directories go on SIGINT/SIGTERM)
#: and targets completed since; read by the signal handler.
_BUILDING: list[RunDirectory] = []
_COMPLETED: list[pathlib.Path] = []
#: While > 0 (a swap or a cleanup is running) a signal is recorded, not handled.
_held = 0
_pending: list[int] = []
_exit = os._exit  # replaced by tests that watch the handler


def interruption_message(signum: int) -> str:
    """The one line printed when ``signum`` ends the process now."""
    name = signal.Signals(signum).name
    if _BUILDING:
        shown = ", ".join(stage.shown for stage in _BUILDING)
        return f"interrupted by {name}; {shown} was left as it was"
    if _COMPLETED:
        return f"interrupted by {name} after {printable(str(_COMPLETED[-1]))} was complete"
    return f"interrupted by {name}"


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """SIGINT/SIGTERM: remove partial builds, write one line, exit 128 + signum."""
    global _held
    if _held:
        _pending.append(signum)
        return
    _held += 1  # a second signal while cleaning up is only recorded
    try:
        message = interruption_message(signum)
        while _BUILDING:  # _remove_partial takes the stage off the list
            _BUILDING[-1]._remove_partial()
        with contextlib.suppress(OSError):
            # os.write, not print: the handler may run in the middle of a print to stderr
            os.write(2, f"error: {message}\n".encode("utf-8", "backslashreplace"))
        _exit(128 + signum)
    finally:  # reached only when _exit is replaced (tests)
        _held -= 1
        _pending.clear()


def install_signal_handlers() -> None:
    """Handle SIGINT and SIGTERM as the module docstring says (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        for signum in _SIGNALS:
            signal.signal(signum, _on_signal)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Record SIGINT/SIGTERM instead of handling them, and handle them afterwards."""
    global _held
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if not _held and _pending:
            signum = _pending[0]
            _pending.clear()
            if signal.getsignal(signum) is _on_signal:
                _on_signal(signum, None)


def printable(text: str) -> str:
    """``text`` with control and other non-printable characters escaped (``\\n``, ``\\x1b``)."""
    out = []
    for char in text:
        if char.isprintable():
            out.append(char)
        else:
            escaped = repr(char)[1:-1]
            out.append(escaped if escaped != char else f"\\u{ord(char):04x}")
    return "".join(out)


def parse_out(value: str | os.PathLike[str] | None, default: pathlib.Path, option: str = "--out") -> pathlib.Path:
    """The ``--out`` value as a path; ``None`` means ``default``, an empty string is refused.

    An empty path would otherwise mean the working directory (``Path("") == Path(".")``).
    """
    if value is None:
        return default
    text = os.fspath(value)
    if text.strip() == "":
        raise RunDirError(f"{option} is empty; give a directory path (use {option} . for the working directory)")
    if "\x00" in text:
        raise RunDirError(f"{option} {printable(text)!s} contains a NUL character")
    return pathlib.Path(text)


# --------------------------------------------------------------------------------------
# The marker and what tokenswarm wrote
# --------------------------------------------------------------------------------------


def _read_marker(directory: pathlib.Path) -> dict[str, Any] | None:
    try:
        with open(directory / MARKER, encoding="utf-8") as stream:
            marker = json.load(stream)
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and "tokenswarm" in marker else None


def write_marker(directory: str | os.PathLike[str], entries: Iterable[str], *, merge: bool = True) -> None:
    """Write ``directory/.tokenswarm-run`` naming the top-level ``entries`` tokenswarm wrote.

    With ``merge`` the entries of an existing marker are kept (a run saved again into
    the same directory).
    """
    from tokenswarm import __version__
    from tokenswarm.io.results import atomic_write_text

    path = pathlib.Path(directory)
    names = {pathlib.PurePosixPath(entry).parts[0] for entry in entries if entry}
    previous = _read_marker(path) if merge else None
    if previous is not None and isinstance(previous.get("entries"), list):
        names |= {str(entry) for entry in previous["entries"]}
    names.discard(MARKER)
    marker = {"tokenswarm": __version__, "entries": sorted(names)}
    atomic_write_text(path / MARKER, json.dumps(marker, indent=1) + "\n")


def _legacy_run_entries(directory: pathlib.Path) -> set[str] | None:
    """Top-level entries of a run written before the marker existed, or ``None``."""
    try:
        with open(directory / _RESULT_FILE, encoding="utf-8") as stream:
            summary = json.load(stream)
    except (OSError, ValueError):
        return None
    # a superset: keys added since (versions, timestamp, machine...) keep a run recognisable
    if not isinstance(summary, dict) or not _SUMMARY_KEYS <= set(summary) or not isinstance(summary["outputs"], list):
        return None
    return {pathlib.PurePosixPath(str(output)).parts[0] for output in summary["outputs"] if output} | {_RESULT_FILE}


def _entries_written(directory: pathlib.Path) -> set[str] | None:
    """What tokenswarm wrote at the top of ``directory``, or ``None`` if it is not its own."""
    marker = _read_marker(directory)
    if marker is not None:
        entries = marker.get("entries")
        return {str(entry) for entry in entries} | {MARKER} if isinstance(entries, list) else None
    legacy = _legacy_run_entries(directory)
    if legacy is not None:
        return legacy
    if (directory / _REPORT_FILE).is_file():  # a report written before the marker existed
        entries = {_REPORT_FILE}
        for child in directory.iterdir():
            if child.name == _REPORT_FILE or not child.is_dir() or child.is_symlink():
                continue
            if _legacy_run_entries(child) is not None or {p.name for p in child.iterdir()} <= {"error.txt"}:
                entries.add(child.name)
        return entries
    return None


def written_entries(directory: str | os.PathLike[str]) -> set[str]:
    """Top-level names in ``directory`` that tokenswarm wrote (empty if it is not its own)."""
    return _entries_written(pathlib.Path(directory)) or set()


def foreign_entries(directory: str | os.PathLike[str]) -> list[str] | None:
    """Paths in ``directory`` that tokenswarm did not write (``None``: not a tokenswarm directory).

    Sub-directories that tokenswarm wrote are searched too when they carry a marker or are
    runs (a report's experiments).
    """
    path = pathlib.Path(directory)
    written = _entries_written(path)
    if written is None:
        return None
    foreign: list[str] = []
    for child in sorted(path.iterdir()):
        if child.name not in written and not _LEGACY_TEMPORARY.match(child.name):
            foreign.append(child.name)
        elif child.is_dir() and not child.is_symlink() and _entries_written(child) is not None:
            inner = foreign_entries(child) or []
            foreign.extend(f"{child.name}/{name}" for name in inner)
    return foreign


def is_tokenswarm_directory(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` is a tokenswarm run or report holding only what tokenswarm wrote."""
    return foreign_entries(directory) == []


# --------------------------------------------------------------------------------------
# The target and its partial sibling
# --------------------------------------------------------------------------------------


def _describe_os_error(error: OSError) -> str:
    return error.strerror or str(error)


def _check_target(target: pathlib.Path, shown: str) -> None:
    """Refuse a target tokenswarm must not replace (raises :class:`RunDirError`)."""
    try:
        info = target.stat()
    except FileNotFoundError:
        return
    except OSError as error:
        raise RunDirError(f"cannot use --out {shown}: {_describe_os_error(error)}") from None
    if not stat.S_ISDIR(info.st_mode):
        kind = "a file" if stat.S_ISREG(info.st_mode) else "not a directory (a device, pipe or socket)"
        raise RunDirError(f"--out {shown} is {kind}; give a directory path")
    try:
        empty = not any(target.iterdir())
    except OSError as error:
        raise RunDirError(f"cannot read --out {shown}: {_describe_os_error(error)}") from None
    if empty:
        return
    foreign = foreign_entries(target)
    if foreign is None:
        raise RunDirError(
            f"--out {shown} is a non-empty directory that is not a tokenswarm run; "
            "choose a new or empty directory (nothing was written)"
        )
    if foreign:
        listed = ", ".join(printable(name) for name in foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise RunDirError(
            f"--out {shown} holds files tokenswarm did not write ({listed}); "
            "move them away or choose another directory (nothing was written)"
        )


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to somebody else
        return True
    return True


def _clean_stale_siblings(target: pathlib.Path) -> None:
    """Remove partial/old siblings of ``target`` left by killed tokenswarm processes.

    Only directories with the marker whose process is gone are touched. An ``old`` sibling
    whose target is missing (killed between the two renames of a swap) is put back.
    """
    try:
        siblings = list(target.parent.iterdir())
    except OSError:
        return
    for sibling in siblings:
        match = _SIBLING.match(sibling.name)
        if match is None or match["name"] != target.name or _process_alive(int(match["pid"])):
            continue
        if not sibling.is_dir() or sibling.is_symlink() or _read_marker(sibling) is None:
            continue
        with contextlib.suppress(OSError):
            if match["kind"] == "old" and not os.path.lexists(target):
                os.replace(sibling, target)
            else:
                shutil.rmtree(sibling)


class RunDirectory:
    """Build a run in a partial sibling of ``target`` and swap it in when complete.

    Args:
        target: the directory the user asked for (``--out``).
        handle_signals: install the SIGINT/SIGTERM handler (remove the partial directory,
            one line, exit 130/143) while building; the CLI installs it for the whole
            process anyway.
        replace: replace a finished run in ``target``. With ``False`` (sweep points, which
            two workers may build at once) the partial directory is renamed onto
            ``target`` only if ``target`` is absent or empty, in one ``rename`` that fails
            otherwise; a run that lost that race is discarded and :attr:`kept_existing`
            is set, so a finished run is never written twice.
    """

    def __init__(
        self, target: str | os.PathLike[str], *, handle_signals: bool = True, replace: bool = True
    ) -> None:
        self.requested = pathlib.Path(target)
        self.shown = printable(os.fspath(target))
        # the real location (as Result.save resolves it); a symlink to a run stays a symlink
        self.target = pathlib.Path(os.path.realpath(target))
        self.partial: pathlib.Path | None = None
        self.handle_signals = handle_signals
        self.replace = replace
        self.kept_existing = False
        self._previous_handlers: dict[int, Any] = {}

    def prepare(self) -> RunDirectory:
        """Validate the target and create the partial directory (with the marker).

        Raises:
            RunDirError: the target is a file, a device, a foreign non-empty directory,
                or its parent cannot be created or written.
        """
        if self.partial is not None:
            return self
        if self.target.parent == self.target:
            raise RunDirError(f"--out {self.shown} is a filesystem root; give a sub-directory")
        _check_target(self.target, self.shown)
        parent = self.target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunDirError(f"cannot create the parent of --out {self.shown}: {_describe_os_error(error)}") from None
        _clean_stale_siblings(self.target)
        _check_target(self.target, self.shown)  # a cleanup may have restored an old run
        partial = parent / f".{self.target.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
        with _signals_held():
            try:
                partial.mkdir()
                self.partial = partial
                _BUILDING.append(self)
                write_marker(partial, [], merge=False)
            except OSError as error:
                self._remove_partial()
                raise RunDirError(f"cannot write next to --out {self.shown}: {_describe_os_error(error)}") from None
        return self

    def final_path(self, path: str | os.PathLike[str]) -> str:
        """Where ``path`` (inside the partial directory) lives once the run is swapped in."""
        assert self.partial is not None
        return str(self.target / os.path.relpath(path, self.partial))

    def __enter__(self) -> pathlib.Path:
        self.prepare()
        assert self.partial is not None
        if self.handle_signals and threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                self._previous_handlers[signum] = signal.signal(signum, _on_signal)
        return self.partial

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        try:
            if error is None:
                self._commit()
            else:
                with _signals_held():
                    self._remove_partial()
        finally:
            for signum, handler in self._previous_handlers.items():
                signal.signal(signum, handler)
            self._previous_handlers.clear()

    def _remove_partial(self) -> None:
        """Delete the partial directory (retried: another thread may still be writing)."""
        partial, self.partial = self.partial, None
        if self in _BUILDING:
            _BUILDING.remove(self)
        for _ in range(3):
            if partial is None or not os.path.lexists(partial):
                return
            shutil.rmtree(partial, ignore_errors=True)

    def _commit(self) -> None:
        assert self.partial is not None
        partial = self.partial
        with _signals_held():
            try:
                entries = [child.name for child in partial.iterdir() if child.name != MARKER]
                write_marker(partial, entries, merge=False)  # the run now lists what it holds
                if not self.replace:
                    self._commit_unless_taken(partial)
                    return
                _check_target(self.target, self.shown)  # nobody wrote into it meanwhile
                retired = None
                if self.target.exists():
                    if any(self.target.iterdir()):
                        retired = self.target.parent / f".{self.target.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
                        os.replace(self.target, retired)
                    else:
                        os.rmdir(self.target)
                try:
                    os.replace(partial, self.target)
                except OSError:
                    if retired is not None:
                        os.replace(retired, self.target)
                    raise
                self.partial = None
                _BUILDING.remove(self)
                _COMPLETED.append(self.requested)
                if retired is not None:
                    shutil.rmtree(retired, ignore_errors=True)
            except OSError as error:
                self._remove_partial()
                raise RunDirError(f"cannot write --out {self.shown}: {_describe_os_error(error)}") from None
            except BaseException:
                self._remove_partial()
                raise


    def _commit_unless_taken(self, partial: pathlib.Path) -> None:
        """Rename ``partial`` onto the target unless a non-empty target exists (no swap)."""
        try:
            os.rename(partial, self.target)  # atomic; refuses a non-empty directory
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            self.kept_existing = True
            self._remove_partial()
            return
        self.partial = None
        _BUILDING.remove(self)
        _COMPLETED.append(self.requested)


def exit_on_interrupt(main: Any) -> None:
    """Install the SIGINT/SIGTERM handler for the whole process, then call ``main()``.

    Once ``main`` is done (its outputs complete) the two signals are ignored: Python
    restores their default action while it shuts down, and a signal then would kill the
    process (exit -15/-2) after it finished its work.
    """
    install_signal_handlers()
    try:
        main()
    finally:
        if threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                signal.signal(signum, signal.SIG_IGN)
