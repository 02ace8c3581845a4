"""Standard datasets on demand: fetched once with ``cnnlab data download NAME``, verified, and
read offline afterwards. This is the only module of cnnlab that opens network connections, and
only when that command (or :func:`download`) is called.

Each file streams to ``<name>.part`` with a progress bar; an interrupted transfer resumes with an
HTTP ``Range`` request where the server allows it; the MD5 checksum is verified before anything
is unpacked (a mismatch deletes the partial file and says so); archives are extracted into a
temporary folder, refusing members that would escape it, and moved into place with one rename.

URLs and MD5 checksums: as published on each dataset's page and as used by torchvision 0.29.1's
dataset modules (MNIST: the mirrors torchvision uses; Fashion-MNIST: Zalando's bucket; CIFAR: the
*binary* versions, with the MD5s listed on Alex Krizhevsky's page, so no pickle is ever loaded;
Pets: the VGG page; VOC: the Oxford mirror). Byte sizes: the servers' Content-Length as recorded
in many independent download logs and scripts (none could be fetched from here). The COCO site
publishes no checksums: its files are checked by exact size only, and `cnnlab data download coco`
says so. ``coco`` is the annotations and the 5,000 val2017 images; ``coco-train2017`` the
annotations and the 118,287 train2017 images (19.3 GB).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cnnlab.errors import CnnlabError
from cnnlab.words import nearest

DEFAULT_ROOT = Path.home() / ".cache" / "cnnlab" / "datasets"


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset on its publisher's server, with what proves it arrived whole."""

    url: str
    md5: str | None  # None: the publisher gives no checksum
    size: int | None  # exact bytes; checked before the checksum (and instead of it for COCO)
    unpack: str = "auto"  # auto (by suffix), gunzip (single .gz file), or none


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset `cnnlab data download` fetches: its files, licence and task."""

    name: str
    files: tuple[RemoteFile, ...]
    licence: str
    task: str

    @property
    def size(self) -> str:
        """The download size for `cnnlab data list`, e.g. ``"163 MB"``."""
        total = sum(f.size or 0 for f in self.files)
        for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
            if total >= scale:
                return f"{total / scale:.3g} {unit}"
        return f"{total} B"


MNIST_BASE = "https://ossci-datasets.s3.amazonaws.com/mnist/"
FASHION_BASE = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
VOC_BASE = "https://thor.robots.ox.ac.uk/pascal/VOC/"

DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        "mnist",
        (
            RemoteFile(
                MNIST_BASE + "train-images-idx3-ubyte.gz",
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                9912422,
                "gunzip",
            ),
            RemoteFile(
                MNIST_BASE + "train-labels-idx1-ubyte.gz",
                "d53e105ee54ea40749a09fcbcd1e9432",
                28881,
                "gunzip",
            ),
            RemoteFile(
                MNIST_BASE + "t10k-images-idx3-ubyte.gz",
                "9fb629c4189551a2d022fa330f9573f3",
                1648877,
                "gunzip",
            ),
            RemoteFile(
                MNIST_BASE + "t10k-labels-idx1-ubyte.gz",
                "ec29112dd5afa0611ce80d1b7f02629c",
                4542,
                "gunzip",
            ),
        ),
        "CC BY-SA 3.0 (LeCun, Cortes, Burges)",
        "classify",
    ),
    "fashion-mnist": DatasetSpec(
        "fashion-mnist",
        (
            RemoteFile(
                FASHION_BASE + "train-images-idx3-ubyte.gz",
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                26421880,
                "gunzip",
            ),
            RemoteFile(
                FASHION_BASE + "train-labels-idx1-ubyte.gz",
                "25c81989df183df01b3e8a0aad5dffbe",
                29515,
                "gunzip",
            ),
            RemoteFile(
                FASHION_BASE + "t10k-images-idx3-ubyte.gz",
                "bef4ecab320f06d8554ea6380940ec79",
                4422102,
                "gunzip",
            ),
            RemoteFile(
                FASHION_BASE + "t10k-labels-idx1-ubyte.gz",
                "bb300cfdad3c16e7a12a480ee83cd310",
                5148,
                "gunzip",
            ),
        ),
        "MIT (Zalando Research)",
        "classify",
    ),
    "cifar10": DatasetSpec(
        "cifar10",
        (
            RemoteFile(
                "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                "c32a1d4ab5d03f1284b67883e8d87530",
                170052171,
            ),
        ),
        "no licence stated (Krizhevsky, 2009); cite the tech report",
        "classify",
    ),
    "cifar100": DatasetSpec(
        "cifar100",
        (
            RemoteFile(
                "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
                "03b5dce01913d631647c71ecec9e9cb8",
                168513733,
            ),
        ),
        "no licence stated (Krizhevsky, 2009); cite the tech report",
        "classify",
    ),
    "pets": DatasetSpec(
        "pets",
        (
            RemoteFile(
                "https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz",
                "5c4f3ee8e5d25df40f4fd59a7f44e54c",
                791918971,
            ),
            RemoteFile(
                "https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz",
                "95a8c909bbe2e81eed6a22bccdf3f68f",
                19173078,
            ),
        ),
        "CC BY-SA 4.0 (Parkhi et al., 2012)",
        "segment",
    ),
    "voc2007": DatasetSpec(
        "voc2007",
        (
            RemoteFile(
                VOC_BASE + "voc2007/VOCtrainval_06-Nov-2007.tar",
                "c52e279531787c972589f7e41ab4ae64",
                460032000,
            ),
            RemoteFile(
                VOC_BASE + "voc2007/VOCtest_06-Nov-2007.tar",
                "b6e924de25625d8de591ea690078ad9f",
                451020800,
            ),
        ),
        "Flickr terms per image; annotations free for research",
        "detect",
    ),
    "voc2012": DatasetSpec(
        "voc2012",
        (
            RemoteFile(
                VOC_BASE + "voc2012/VOCtrainval_11-May-2012.tar",
                "6cd6e144f989b92b3379bac3b3de84fd",
                1999639040,
            ),
        ),
        "Flickr terms per image; annotations free for research",
        "detect, segment",
    ),
    "coco": DatasetSpec(
        "coco",
        (
            RemoteFile(
                "http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
                None,
                252907541,
            ),
            RemoteFile("http://images.cocodataset.org/zips/val2017.zip", None, 815585330),
        ),
        "CC BY 4.0 annotations; Flickr terms per image",
        "detect",
    ),
    "coco-train2017": DatasetSpec(
        "coco-train2017",
        (
            RemoteFile(
                "http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
                None,
                252907541,
            ),
            RemoteFile("http://images.cocodataset.org/zips/train2017.zip", None, 19336861798),
        ),
        "CC BY 4.0 annotations; Flickr terms per image",
        "detect",
    ),
}


def data_root(root: str | Path | None = None) -> Path:
    """``--root``, or the default cache; a file in its place is an error, not a traceback."""
    path = Path(root or DEFAULT_ROOT)
    if path.exists() and not path.is_dir():
        raise CnnlabError(f"{path}: not a folder (--root is where datasets are kept)")
    return path


def dataset_dir(name: str, root: str | Path | None = None) -> Path:
    """Where dataset ``name`` lives under the data root (downloaded or not)."""
    return data_root(root) / name


def is_present(name: str, root: str | Path | None = None) -> bool:
    """Whether ``name`` was downloaded whole (its ``.complete`` marker is written last)."""
    return (dataset_dir(name, root) / ".complete").is_file()


def require(name: str, root: str | Path | None = None) -> Path:
    """The folder of a downloaded dataset, or a :class:`CnnlabError` saying how to get it."""
    if name not in DATASETS:
        raise CnnlabError(
            f"unknown dataset {name!r}{nearest(name, DATASETS)}; see `cnnlab data list`"
        )
    if not is_present(name, root):
        where = f" --root {root}" if root else ""
        raise CnnlabError(
            f"dataset {name!r} is not downloaded; run `cnnlab data download "
            f"{name}{where}` (nothing is fetched at training time)"
        )
    return dataset_dir(name, root)


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    """The MD5 hex digest of a file, read ``chunk`` bytes at a time (the publishers' checksums)."""
    h = hashlib.md5()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fetch(
    url: str,
    dest: Path,
    md5: str | None,
    timeout: float = 60.0,
    progress: bool = True,
    size: int | None = None,
) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part`` when the server allows), then verify
    the byte ``size`` and the ``md5``. A mismatch of either deletes the file and raises
    :class:`CnnlabError`."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, TextColumn, TransferSpeedColumn

    from cnnlab.progress import ProgressBar

    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have >= size:  # complete (or too long): verify below
        return _verify(url, part, dest, md5, size)
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()  # an error answer holds its connection open like a response
        if exc.code == 416 and have:  # already complete
            response = None
        else:
            raise CnnlabError(f"{url}: server answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:  # ValueError: "http://:80/x"
        if isinstance(getattr(exc, "reason", exc), FileNotFoundError):  # a --mirror folder's
            raise CnnlabError(f"{url}: no such file in the mirror folder") from None
        raise CnnlabError(f"{url}: cannot connect ({exc})") from None
    if response is not None:
        with response:
            resumed = response.status == 206
            mode = "ab" if resumed else "wb"
            total = response.headers.get("Content-Length")
            total_bytes = int(total) + (have if resumed else 0) if total else size
            columns = [TextColumn(dest.name), BarColumn(), DownloadColumn(), TransferSpeedColumn()]
            with (
                part.open(mode) as f,
                ProgressBar(
                    *columns, console=Console(stderr=True), disable=not progress, transient=True
                ) as bar,
            ):
                task = bar.add_task("get", total=total_bytes, completed=have if resumed else 0)
                try:
                    while block := response.read(1 << 16):
                        f.write(block)
                        bar.advance(task, len(block))
                except (OSError, urllib.error.URLError) as exc:
                    raise CnnlabError(
                        f"{url}: transfer interrupted after "
                        f"{part.stat().st_size} bytes ({exc}); run the same "
                        "command again to resume"
                    ) from None
            if total_bytes is not None and part.stat().st_size < total_bytes:
                raise CnnlabError(
                    f"{url}: transfer cut at {part.stat().st_size} of "
                    f"{total_bytes} bytes; run the same command again to resume"
                )
    return _verify(url, part, dest, md5, size)


def _verify(url: str, part: Path, dest: Path, md5: str | None, size: int | None) -> Path:
    """Check the finished ``part`` against the table's size and MD5, then rename it to ``dest``."""
    if size is not None and part.stat().st_size != size:
        got = part.stat().st_size
        part.unlink()
        raise CnnlabError(
            f"{url}: size mismatch ({got} bytes, expected {size}); the partial file was deleted"
        )
    if md5 is not None:
        got = md5sum(part)
        if got != md5:
            part.unlink()
            raise CnnlabError(
                f"{url}: checksum mismatch (md5 {got}, expected {md5}); the "
                "partial file was deleted"
            )
    part.replace(dest)
    return dest


def _safe_target(base: Path, member: str) -> Path:
    target = (base / member).resolve()
    if not target.is_relative_to(base.resolve()):
        raise CnnlabError(f"archive member {member!r} would escape the target folder; refused")
    return target


# what a damaged archive raises: cut short, a bad checksum inside, not the format it says
DAMAGED = (
    EOFError,
    zlib.error,
    gzip.BadGzipFile,
    tarfile.ReadError,
    tarfile.CompressionError,
    zipfile.BadZipFile,
)


def unpack(archive: Path, into: Path, how: str = "auto") -> None:
    """Extract ``archive`` into ``into``, refusing members outside it (``../``, absolute
    paths, links pointing out) and devices or pipes, on every Python (tarfile's "data" filter,
    where there is one, refuses them too). A damaged archive (COCO's are checked by size
    alone) is a :class:`CnnlabError` naming it."""
    try:
        _unpack(archive, into, how)
    except DAMAGED as e:
        raise CnnlabError(
            f"{archive}: a damaged archive ({e or type(e).__name__}); delete it and run the "
            "download again"
        ) from e


def _unpack(archive: Path, into: Path, how: str) -> None:
    name = archive.name
    if how == "gunzip" or (
        how == "auto" and name.endswith(".gz") and not name.endswith((".tar.gz", ".tgz"))
    ):
        with gzip.open(archive, "rb") as src, (into / name[:-3]).open("wb") as dst:
            shutil.copyfileobj(src, dst)
    elif how == "none":
        shutil.copy2(archive, into / name)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tar:
            for m in tar.getmembers():
                _safe_target(into, m.name)
                if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
                    raise CnnlabError(
                        f"{archive}: member {m.name!r} is a device or a pipe; refused"
                    )
                if m.islnk():  # a hard link names its target from the archive's root
                    _safe_target(into, m.linkname)
                elif m.issym():  # a symbolic one from its own folder
                    _safe_target(into, str(Path(m.name).parent / m.linkname))
            if hasattr(tarfile, "data_filter"):  # Python 3.10.12+, 3.11.4+
                try:
                    tar.extractall(into, filter="data")
                except tarfile.FilterError as e:  # whatever the checks above let through
                    raise CnnlabError(f"{archive}: {e}; refused") from e
            else:  # older: the members were checked above
                tar.extractall(into)
    elif zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for m in z.namelist():
                _safe_target(into, m)
            z.extractall(into)
    else:
        raise CnnlabError(f"{archive}: not a gzip, tar or zip archive")


def mirror_base(mirror: str) -> str:
    """``--mirror`` as a base URL: an ``http(s)://`` or ``file://`` URL as given, or a local
    folder (a USB disk, a shared drive holding the archives) as its ``file://`` URL."""
    if Path(mirror).expanduser().is_dir():
        return Path(mirror).expanduser().resolve().as_uri()
    try:
        parts = urllib.parse.urlsplit(mirror)
    except ValueError as exc:  # e.g. "http://[::1" (an unclosed IPv6 address)
        raise CnnlabError(f"--mirror {mirror!r}: not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https", "file") or not (parts.netloc or parts.path):
        raise CnnlabError(
            f"--mirror {mirror!r}: neither an http(s):// or file:// URL nor an existing folder"
        )
    return mirror.rstrip("/")


@contextlib.contextmanager
def _only_download_of(name: str, root: Path) -> Iterator[None]:
    """Hold ``root/.NAME.lock`` for the download: a second ``cnnlab data download NAME``
    into the same root meanwhile would append to the same ``.part`` files and spoil both; it is
    refused instead. ``flock`` locks go with the process, so a killed download leaves none
    (where ``fcntl`` is missing, Windows, there is no lock)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with (root / f".{name}.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CnnlabError(
                f"{name}: another `cnnlab data download {name}` is under way into "
                f"{root}; wait for it to end (run this again then to check)"
            ) from None
        yield  # the lock ends when the file closes


def download(
    name: str, root: str | Path | None = None, mirror: str | None = None, progress: bool = True
) -> Path:
    """Fetch, verify and unpack dataset ``name`` into ``root/name``; returns that folder.

    ``mirror`` replaces every URL's folder with another base URL or a local folder (same file
    names): for a local copy, a proxy, or the tests' server on 127.0.0.1."""
    if name not in DATASETS:
        known = ", ".join(DATASETS)
        raise CnnlabError(f"unknown dataset {name!r}{nearest(name, DATASETS)} (known: {known})")
    base = mirror_base(mirror) if mirror else None
    spec = DATASETS[name]
    target = dataset_dir(name, root)
    if is_present(name, root):
        return target
    downloads = data_root(root) / ".downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    with _only_download_of(name, downloads.parent):
        if is_present(name, root):  # another download ended between the check and the lock
            return target
        return _download_unlocked(name, spec, target, downloads, base, progress)


def _download_unlocked(
    name: str, spec: DatasetSpec, target: Path, downloads: Path, base: str | None, progress: bool
) -> Path:
    """Fetch (or reuse) each archive into ``downloads``, unpack all into a staging folder and
    move it to ``target`` in one rename; a failure removes the staging folder."""
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=downloads.parent))
    try:
        for f in spec.files:
            filename = f.url.rsplit("/", 1)[1]
            url = f"{base}/{filename}" if base else f.url
            archive = downloads / filename
            if not (
                archive.exists()
                and (f.size is None or archive.stat().st_size == f.size)
                and (f.md5 is None or md5sum(archive) == f.md5)
            ):
                fetch(url, archive, f.md5, progress=progress, size=f.size)
            unpack(archive, staging, f.unpack)
        (staging / ".complete").write_text(name + "\n")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)  # one atomic move into place
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
