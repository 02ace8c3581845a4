"""The ``cnnlab`` command line: thin argparse front-ends over the library.

Each handler parses flags into plain values or a config dataclass, calls the library and prints a
human view (rich) or, with ``--json``, one JSON object as the last stdout line. Bad input raises
:class:`CnnlabError` anywhere below; :func:`main` prints it as one line and returns 2, as it does
an operating-system error on a path the user named (a folder where a file should go, say).

One module per area: ``course`` (models and summary from ``zoo``, explain, edges),
``classify`` (train, eval, predict, export, augment), ``tasks`` (localize, detect), ``segment``,
``faces``, ``art`` (visualize, style), ``data`` (download, list, scenes), ``runs``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import signal
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from cnnlab.cli import (
    augment,
    classify,
    course,
    data,
    detect,
    faces,
    localize,
    runs,
    segment,
    style,
    visualize,
)
from cnnlab.cli.common import Parser, ParserDone, typed_dests
from cnnlab.engine.run_folders import forget_claims, release_unfinished_claims
from cnnlab.errors import CnnlabError, out_of_memory, refuse_web_address
from cnnlab.words import skipped_lines


def _global_options(default: Any) -> Parser:
    """``--json`` and ``--debug``, taken before the command or after it. The commands' copies
    default to ``SUPPRESS``: a subcommand's own default (False) would otherwise overwrite
    ``cnnlab --json ...`` (argparse copies every value of the subcommand's namespace)."""
    options = Parser(add_help=False)
    options.add_argument(
        "--json",
        action="store_true",
        default=default,
        help="print one JSON object with the results as the last stdout line",
    )
    options.add_argument(
        "--debug", action="store_true", default=default, help="show tracebacks of errors"
    )
    return options


def build_parser() -> argparse.ArgumentParser:
    common = _global_options(argparse.SUPPRESS)
    parser = Parser(
        prog="cnnlab",
        parents=[_global_options(False)],
        description="cnnlab: the ideas of a CNN course, implemented for real",
    )
    parser.add_argument(
        "--version", action=_ShowVersion, help="show cnnlab's, torch's and Python's versions"
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    areas = (
        course,
        classify,
        augment,
        localize,
        detect,
        segment,
        faces,
        visualize,
        style,
        data,
        runs,
    )
    for area in areas:
        area.add_parsers(sub, common)
    return parser


def versions() -> dict[str, str]:
    """cnnlab's, torch's and Python's versions, read without importing torch."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from cnnlab import __version__

    try:
        torch = version("torch")
    except PackageNotFoundError:
        torch = "not installed"
    return {"cnnlab": __version__, "torch": torch, "python": platform.python_version()}


class _ShowVersion(argparse.Action):
    """``--version``: stop parsing (no command is needed) and let :func:`main` say the
    versions, as a line or, with ``--json``, as the JSON object every command prints."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        raise _VersionAsked


class _VersionAsked(Exception):
    pass


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float as ``None``: the ``--json`` line stays valid JSON
    (``json.dumps`` would write ``NaN``, which JSON does not have); NumPy scalars as numbers."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


@contextlib.contextmanager
def _own_warnings_as_lines(debug: bool) -> Iterator[None]:
    """cnnlab's own warnings (embeddings collapsing, ...) print as one ``cnnlab: warning:`` line
    on stderr, like its errors, instead of Python's ``file:line: UserWarning:`` form; other
    libraries' warnings, and everything under ``--debug``, show as usual."""
    if debug:
        yield
        return
    package = str(Path(__file__).resolve().parents[1])
    with warnings.catch_warnings():
        show_others = warnings.showwarning

        def show(
            message: Warning | str, category: type[Warning], filename: str, *rest: Any
        ) -> None:
            if str(Path(filename).resolve()).startswith(package):
                print(f"cnnlab: warning: {message}", file=sys.stderr)
            else:
                show_others(message, category, filename, *rest)

        warnings.showwarning = show
        yield


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[list[bool]]:
    """SIGTERM (a batch scheduler's time limit, ``kill``, ``timeout``) stops a command the way
    Ctrl-C does, so a training run says which ``--resume`` continues it instead of vanishing
    without a word; the yielded flag says it was SIGTERM. Only where signals can be set (the
    main thread)."""
    seen = [False]

    def on_sigterm(signum: int, frame: object) -> None:
        seen[0] = True
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread
        yield seen
        return
    try:
        yield seen
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0, 2 for bad input, 130 after Ctrl-C, 143 after
    SIGTERM)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    console = Console(markup=False)  # file names like "img[1].png" are printed as they are
    forget_claims()
    code = 1  # an exception no handler below turns into a code (--debug, or a bug)
    with _sigterm_as_interrupt() as terminated:
        try:
            code = _run(argv, debug, console, terminated)
        finally:
            if code != 0:  # a run that failed before its first checkpoint leaves no folder
                release_unfinished_claims()
    return code


# options whose values may be web addresses: the dataset mirror, and a person's name (not a path)
TAKES_ADDRESSES = frozenset({"mirror", "name"})


def _refuse_web_addresses(args: argparse.Namespace) -> None:
    """Every file or folder option given as a web address (``--weights https://...``) is one
    error naming it: cnnlab fetches nothing outside ``cnnlab data download``; the address read
    as a path said only "https:/download.pytorch.org/...: no such weights file"."""
    for dest, value in vars(args).items():
        if dest in TAKES_ADDRESSES:
            continue
        for given in value if isinstance(value, list) else [value]:
            if isinstance(given, str):
                refuse_web_address(given)


def _run(argv: list[str], debug: bool, console: Console, terminated: list[bool]) -> int:
    try:
        with _own_warnings_as_lines(debug):
            try:
                parser = build_parser()
                args = parser.parse_args(argv)
            except ParserDone as done:  # --help was shown
                return done.status
            except _VersionAsked:
                said = versions()
                if "--json" in argv:
                    print(json.dumps(said))
                else:
                    print(
                        f"cnnlab {said['cnnlab']} (torch {said['torch']}, Python {said['python']})"
                    )
                return 0
            _refuse_web_addresses(args)
            args.typed = {w.split("=", 1)[0] for w in argv if w.startswith("--")}  # as given
            args.typed_settings = typed_dests(parser, args)  # what they set (--no-mirror: mirror)
            args.started = time.time()  # what a run wrote since: its figures, not older ones
            skipped = getattr(args, "skipped_files", [])  # a folder's unreadable images
            for line in skipped_lines(skipped):
                print(line, file=sys.stderr)
            result = args.handler(args, console)
            if skipped and isinstance(result, dict):
                result["skipped_files"] = skipped
        if args.json:
            print(json.dumps(json_safe(result), default=str, allow_nan=False))
        return 0
    except CnnlabError as exc:
        if debug:
            raise
        return _failed(f"error: {exc}", 2, argv)
    except OSError as exc:  # a path the user gave that the system refuses: a folder for a file...
        if debug or exc.filename is None:
            raise
        where, reason = exc.filename, exc.strerror
        # a file where the path needs a folder: name that file
        if isinstance(exc, FileExistsError | NotADirectoryError):
            path = Path(exc.filename)
            where = next((p for p in (path, *path.parents) if p.is_file()), where)
            reason = "a file, where a folder is needed for what is written there"
        return _failed(f"error: {where}: {reason}", 2, argv)
    except RuntimeError as exc:  # torch's allocator, on the CPU or a GPU: a size set too large
        detail = out_of_memory(exc)
        if debug or detail is None:
            raise
        return _failed(
            f"error: out of memory ({detail}); lower the sizes asked for "
            "(--image-size, --size, --batch-size, --embedding-dim, ...)",
            2,
            argv,
        )
    except KeyboardInterrupt as exc:  # a training loop may say how to continue
        what = "terminated" if terminated[0] else "interrupted"
        return _failed(what + (f"; {exc}" if str(exc) else ""), 143 if terminated[0] else 130, argv)


def _failed(message: str, code: int, argv: Sequence[str]) -> int:
    """Say ``cnnlab: <message>`` on stderr and return ``code``; with ``--json`` the last stdout
    line is still one JSON object, ``{"error": message, "exit_code": code}``, so a script that
    reads it learns why instead of finding no JSON (or a progress line) there."""
    print(f"cnnlab: {message}", file=sys.stderr)
    if "--json" in argv:
        print(json.dumps({"error": message.removeprefix("error: "), "exit_code": code}))
    return code


if __name__ == "__main__":
    sys.exit(main())
