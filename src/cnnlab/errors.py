"""The one exception type for bad user input.

Anything the user can get wrong (a CLI value, a file, a checkpoint, a matrix typed on the command
line) raises :class:`CnnlabError` with a one-line message naming the problem and, where there is
one, the file. The CLI turns it into ``cnnlab: error: <message>`` on stderr and exit code 2.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

# a web address (http://, https://, s3://...; "C:/" is a drive letter, not a scheme); a Path keeps
# one slash of the two ("http:/host/x.jpg")
WEB_ADDRESS = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")


class CnnlabError(ValueError):
    """Bad input from the user: reported as one line, exit code 2, never a traceback."""


# the problems of each label file, while `cnnlab data check` reads a dataset: every bad file
# named at once, where training stops at the first
_collecting: ContextVar[list[str] | None] = ContextVar("collecting", default=None)


@contextlib.contextmanager
def problems_collected() -> Iterator[list[str]]:
    """Within it, a reader that :func:`collected` a file's :class:`CnnlabError` leaves that
    file out and goes on; the yielded list holds each message, in the order found."""
    found: list[str] = []
    token = _collecting.set(found)
    try:
        yield found
    finally:
        _collecting.reset(token)


def collected(exc: CnnlabError) -> bool:
    """Whether ``exc``, one label file's problem, was recorded by :func:`problems_collected`
    (the reader then leaves the file out); ``False`` outside it: raise it."""
    found = _collecting.get()
    if found is None:
        return False
    found.append(str(exc))
    return True


def raise_unless_collected(message: str) -> None:
    """Raise ``message`` as a :class:`CnnlabError`, unless :func:`collected` records it (within
    :func:`problems_collected`): then the reader leaves that entry out and goes on."""
    exc = CnnlabError(message)
    if not collected(exc):
        raise exc


def refuse_web_address(given: str | Path) -> None:
    """A :class:`CnnlabError` for a web address given where a file or folder goes (and no such
    path exists here): nothing is fetched, except by ``cnnlab data download``."""
    if WEB_ADDRESS.match(str(given)) and not Path(given).exists():
        raise CnnlabError(
            f"{given}: a web address; cnnlab reads files on this machine and downloads only "
            "datasets (cnnlab data download): save the file, then give its path"
        )


def refuse_unwritable(path: Path) -> None:
    """A :class:`CnnlabError` when no file can be written at ``path`` (a read-only folder, a
    place like /proc): found by writing and removing ``<path>.tmp`` (its folders made first),
    before the work whose result goes there rather than after it."""
    probe = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe.open("w").close()
        probe.unlink()
    except OSError as exc:
        blocking = next((p for p in path.parents if p.is_file()), None)
        why = f"{blocking} is a file, where a folder is needed" if blocking else exc.strerror
        raise CnnlabError(f"{path}: cannot be written ({why or exc})") from None


def out_of_memory(exc: RuntimeError) -> str | None:
    """What torch asked for, when ``exc`` is its allocator failing (``DefaultCPUAllocator: can't
    allocate memory: you tried to allocate 80000000000 bytes``, or a GPU's out of memory), else
    ``None``. Most sizes are checked against the memory before any work; this catches the rest
    (``edges learn --size 100000``, ``faces train --embedding-dim 10000000``) as one line."""
    text = str(exc)
    if not (
        isinstance(exc, torch_oom()) or "can't allocate memory" in text or "out of memory" in text
    ):
        return None
    asked = re.search(r"allocate ([\d.]+) (bytes|[KMGT]iB)", text)
    if asked is None:
        return "torch could not allocate what it needed"
    amount, unit = float(asked.group(1)), asked.group(2)
    scale = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}[unit]
    size = amount * scale
    shown = f"{size / 2**30:,.1f} GiB" if size >= 2**30 else f"{size / 2**20:,.1f} MiB"
    return f"torch asked for {shown} at once"


def torch_oom() -> type[BaseException] | tuple[()]:
    """``torch.cuda.OutOfMemoryError`` where torch is already imported (always, once a command
    has run a model)."""
    torch = sys.modules.get("torch")
    return getattr(getattr(torch, "cuda", None), "OutOfMemoryError", ()) if torch else ()
