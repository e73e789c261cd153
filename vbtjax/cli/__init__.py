"""The ``vbtjax`` command line: :func:`build_parser` and :func:`main`.

Each subcommand lives in its own module and plugs in through an ``add_<name>(subparsers)`` function that adds its
parser and sets ``func`` to a ``run(args) -> int``: ``simulate`` (:mod:`vbtjax.cli.simulate`), ``fit``
(:mod:`vbtjax.cli.fit`), ``vep``, ``connectome``, ``whatif`` and ``sbi``. What they share (the usage error, JSON,
atomic output files, the settings record behind ``--resume``) is in :mod:`vbtjax.cli.common`.

Units everywhere: time in ms, lengths in mm, conduction speed in mm/ms (= m/s). A time option takes a bare number
in ms or a number with its unit (``720ms``, ``0.72s``, ``2min``: :func:`vbtjax.cli.common.time_ms`).

Warnings are one line each on stderr, ``vbtjax CMD: warning: ...``; long commands announce their stages on stderr
(``[2/4] compiling the model``) unless ``--quiet``.

Exit codes: 0 success; 2 bad input: a bad command-line value, or a file given that is missing, unreadable, damaged
or not what it should be, a ``--resume`` whose settings differ from the checkpoint's, a run too large for the
memory (each reported in one line, ``vbtjax CMD: error: ...``, no traceback); 1 the run itself failed (e.g. the
simulation diverged, the disk is full) or an internal error (one line, and the traceback is written to a file whose
path the line gives; ``VBTJAX_DEBUG=1`` shows it instead); 3 the run finished but its result is not meaningful
(``vbtjax simulate``'s health check found degenerate dynamics: the outputs are written, the line says what to
change; ``--no-check`` exits 0); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback

from .common import PROG, UsageError, one_line_warnings, print_error, version
from .common import ArgumentParser as _ArgumentParser
from .common import fc_panel as _fc_panel  # noqa: F401 - the name other modules imported from here
from .common import jsonable as _jsonable  # noqa: F401
from .common import print_error as _error  # noqa: F401
from .common import version as _version  # noqa: F401
from .simulate import CONNECTOME_SIZES, DEFAULT_DURATIONS, DEFAULT_PERIODS, MONITOR_CHOICES, PRESETS, add_simulate  # noqa: F401 - public constants of the simulate command, kept importable here

__all__ = ["main", "build_parser", "PRESETS", "UsageError"]

_PATH_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
# ValueError subclasses that mean "this input cannot be used", by the module that defines them; a module not yet
# imported cannot have raised its error, so the CLI's start-up does not import them
_INPUT_ERRORS = {
    "vbtjax.files": "FileReadError",
    "vbtjax._serialise": "SerialisationError",  # and twin.TwinFileError, its subclass
    "vbtjax.inference.fitting": "ResumeError",
}


def build_parser() -> argparse.ArgumentParser:
    """The ``vbtjax`` parser; each subcommand sets ``func``."""
    parser = _ArgumentParser(
        prog=PROG,
        description="Differentiable Virtual Brain Twins on JAX. Units: ms, mm, mm/ms.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_ArgumentParser)
    add_simulate(sub)
    from .fit import add_fit

    add_fit(sub)
    from .vep import add_vep

    add_vep(sub)
    from .connectome import add_connectome

    add_connectome(sub)
    from .whatif import add_whatif

    add_whatif(sub)
    from .sbi import add_sbi

    add_sbi(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``vbtjax`` command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        print_error(command, str(e))
        return 2
    except SystemExit as e:  # --help, --version
        return e.code if isinstance(e.code, int) else 0
    args.argv = argv
    if getattr(args, "func", None) is None:
        print_error(None, f"a command is required: {', '.join(_commands(parser))} (see vbtjax --help)")
        return 2
    try:
        with one_line_warnings(args.command):  # a warning is one plain line, as errors are
            return int(args.func(args))
    except UsageError as e:
        print_error(args.command, str(e))
        return 2
    except KeyboardInterrupt:
        print_error(args.command, "interrupted")
        return 130
    except Exception as e:  # noqa: BLE001 - sorted below: bad input (2), the environment (1), a bug (1, traceback)
        return _failure(args.command, e)


def _input_error(e: BaseException) -> str | None:
    """The one-line message of an error that bad input explains (a file given, a resume, a size), else None."""
    if isinstance(e, _PATH_ERRORS):
        return _os_message(e)
    if isinstance(e, MemoryError):
        return str(e) or "not enough memory for this run; make it smaller"
    for module, name in _INPUT_ERRORS.items():
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None and isinstance(e, cls):
            return str(e)
    return None


def _os_message(e: OSError) -> str:
    where = e.filename if e.filename is not None else None
    what = e.strerror or str(e)
    return f"{where}: {what}" if where is not None else what


def _failure(command: str | None, e: Exception) -> int:
    """Report an exception from a subcommand in one line: 2 for bad input, 1 for the environment (a full disk) and
    for bugs, whose traceback goes to a file (or to stderr, re-raised, with ``VBTJAX_DEBUG=1``)."""
    message = _input_error(e)
    if message is not None:
        print_error(command, message)
        return 2
    if isinstance(e, OSError):
        print_error(command, _os_message(e))
        return 1
    if os.environ.get("VBTJAX_DEBUG"):
        raise e
    text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    try:
        fd, path = tempfile.mkstemp(prefix="vbtjax-traceback-", suffix=".txt")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        where = f"the traceback is in {path}"
    except OSError:
        where = "rerun with VBTJAX_DEBUG=1 for the traceback"
    short = " ".join(str(e).split())
    short = short if len(short) <= 300 else short[:297] + "..."
    print_error(command, f"internal error: {type(e).__name__}: {short} (this is a bug, please report it; {where})")
    return 1


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
