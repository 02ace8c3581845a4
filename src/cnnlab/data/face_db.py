"""The recognition database: identities and their embeddings in SQLite (Python's standard
library). Every enrolment is one transaction: a crash part-way leaves the person either fully
enrolled or absent, and never touches people enrolled before. The database remembers which model
made its embeddings and refuses embeddings from another, and the file of the encoder that last
enrolled someone (:meth:`FaceDatabase.encoder_of`), so verify and identify can load it again
without being told.
"""

from __future__ import annotations

import difflib
import sqlite3
import warnings
from pathlib import Path

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.words import natural_key

NAMES_SHOWN = 10  # enrolled names an unknown name's error lists; more: how many, and faces list

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS persons (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS embeddings (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    vector BLOB NOT NULL
);
"""


# seconds to wait for another program's write (a database browser, a second enrolment) to end
BUSY_TIMEOUT = 10.0


def _busy(exc: sqlite3.DatabaseError) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and any(
        word in str(exc) for word in ("locked", "busy")
    )


def _in_use(path: Path) -> CnnlabError:
    """For a database another program keeps locked past :data:`BUSY_TIMEOUT` (SQLite's own
    "database is locked" came out as a traceback, or as "not a cnnlab face database")."""
    return CnnlabError(
        f"{path}: in use by another program (locked for over {BUSY_TIMEOUT:g} s); nothing was "
        "changed, try again when it is done"
    )


def _not_ours(path: Path, exc: sqlite3.DatabaseError) -> CnnlabError:
    """The error for a file SQLite would not open as ours: locked, or not a face database."""
    return (
        _in_use(path) if _busy(exc) else CnnlabError(f"{path}: not a cnnlab face database ({exc})")
    )


def _other_model(path: Path, made_by: str, model_id: str) -> CnnlabError:
    return CnnlabError(
        f"{path}: its embeddings were made by model {made_by}; this is {model_id}. Use a new "
        "database or the same model"
    )


def _begin(cur: sqlite3.Cursor, path: Path) -> None:
    """Start a write transaction, waiting up to :data:`BUSY_TIMEOUT` for another writer."""
    try:
        cur.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if _busy(exc):
            raise _in_use(path) from None
        raise


# Squared distance under which two embeddings count as one image: the same file embedded alone
# or in a batch differs by float rounding (~1e-12), while two photos are ~0.01 or more apart.
SAME_IMAGE = 1e-8


def _holds(rows: np.ndarray | None, vector: np.ndarray) -> bool:
    """Whether ``rows (m, D)`` has one within :data:`SAME_IMAGE` of ``vector (D,)`` (the
    differences taken directly: |a|^2 + |b|^2 - 2ab would round to ~1e-6)."""
    return (
        rows is not None
        and len(rows) > 0
        and bool(((rows - vector) ** 2).sum(1).min() <= SAME_IMAGE)
    )


def _warn_if_only_case_differs(cur: sqlite3.Cursor, path: Path, name: str) -> None:
    """A warning when ``name`` is new but someone is enrolled under the same letters in
    another case (``Ann`` beside ``ann``): names are told apart exactly, so this makes a second
    person, which identify then names apart."""
    if cur.execute("SELECT 1 FROM persons WHERE name = ?", (name,)).fetchone():
        return
    folded = name.casefold()
    twins = [n for (n,) in cur.execute("SELECT name FROM persons") if n.casefold() == folded]
    if twins:
        warnings.warn(
            f"{path}: {name!r} is enrolled as a new person beside {twins[0]!r} (names differ "
            f"by case only; enrol as {twins[0]!r} to add to them)",
            stacklevel=4,
        )


def _check_vector(path: Path, vector: np.ndarray, width: int) -> None:
    """Refuse an embedding the gallery could not stack with the others (another width: another
    model's) or could not compare (NaN, infinity)."""
    if len(vector) != width or not np.isfinite(vector).all():
        what = "not all finite" if len(vector) == width else f"the database holds {width}-d ones"
        raise CnnlabError(
            f"{path}: a {len(vector)}-d embedding, {what} (every vector must come from the "
            "database's model)"
        )


def require_database(path: str | Path) -> Path:
    """``path``, or a :class:`CnnlabError` when there is no file there (only ``enroll``
    creates a database)."""
    path = Path(path)
    if path.is_dir():
        raise CnnlabError(f"{path}: a folder, not a database file (--db faces.db)")
    if not path.is_file():
        raise CnnlabError(f"{path}: no such database (cnnlab faces enroll creates it)")
    return path


# what an encoder file is: a run's checkpoint, or the ONNX file cnnlab export wrote of one
ENCODER_FORMATS = ("checkpoint", "onnx")


class FaceDatabase:
    """``FaceDatabase(path, model_id, encoder)``: ``enroll``, ``remove``, ``people``,
    ``gallery``; ``encoder``, ``(format, file)`` of the model's file (a format of
    :data:`ENCODER_FORMATS`), is recorded with each enrolment."""

    def __init__(
        self, path: str | Path, model_id: str, encoder: tuple[str, str | Path] | None = None
    ) -> None:
        self.path = Path(path)
        self.encoder = encoder
        if self.path.is_dir():  # sqlite3 would say only "unable to open database file"
            require_database(self.path)
        if self.path.is_file() and self.path.stat().st_size:
            made_by = self.model_of(self.path)  # another program's SQLite file is left alone
            if made_by != model_id:
                raise _other_model(self.path, made_by, model_id)
        try:  # isolation_level None: explicit transactions
            self.conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
            self._create_tables(model_id)
        except sqlite3.DatabaseError as exc:
            raise _not_ours(self.path, exc) from None
        self.model_id = model_id

    def _create_tables(self, model_id: str) -> None:
        """The tables and the model record, in one transaction (a new file, or one made by
        this model: nothing is changed then)."""
        self.conn.execute("PRAGMA foreign_keys = ON")
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("BEGIN IMMEDIATE")  # tables and model record appear together
        for statement in filter(str.strip, SCHEMA.split(";")):
            self.conn.execute(statement)
        self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('model', ?)", (model_id,))
        (made_by,) = self.conn.execute("SELECT value FROM meta WHERE key = 'model'").fetchone()
        self.conn.execute("COMMIT")
        if made_by != model_id:  # another enrolment created the file since the check above
            self.conn.close()
            raise _other_model(self.path, made_by, model_id)

    @staticmethod
    def model_of(path: str | Path) -> str:
        """The id of the model that made an existing database's embeddings; a
        :class:`CnnlabError` when ``path`` is not a cnnlab face database (it is not changed)."""
        path = require_database(path)
        try:
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT)
            try:
                tables = {
                    r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
                }
                row = (
                    conn.execute("SELECT value FROM meta WHERE key = 'model'").fetchone()
                    if "meta" in tables
                    else None
                )
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            raise _not_ours(path, exc) from None
        if row is None or not {"persons", "embeddings"} <= tables:
            raise CnnlabError(
                f"{path}: not a cnnlab face database (no model record, persons and embeddings)"
            )
        return row[0]

    @staticmethod
    def encoder_of(path: str | Path) -> tuple[str, Path] | None:
        """``(format, file)`` of the encoder that last enrolled someone in the database at
        ``path`` (format: one of :data:`ENCODER_FORMATS`), or ``None`` when it was never
        recorded (a database nobody was enrolled in, or one an earlier cnnlab wrote)."""
        FaceDatabase.model_of(path)  # refuses a missing file and one that is not ours
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT)
        try:
            found = dict(
                conn.execute(
                    "SELECT key, value FROM meta WHERE key IN ('encoder', 'encoder_format')"
                ).fetchall()
            )
        finally:
            conn.close()
        if found.get("encoder_format") not in ENCODER_FORMATS or not found.get("encoder"):
            return None
        return found["encoder_format"], Path(found["encoder"])

    def enroll(self, name: str, embeddings: np.ndarray) -> int:
        """Add ``embeddings (n, D)`` for ``name`` (created if new) in one transaction; returns
        how many were added. An embedding equal to one ``name`` already has (within
        ``SAME_IMAGE``: the same image enrolled again, or twice in one folder) is skipped, so
        enrolling a folder again does not give its images double weight."""
        name = name.strip()  # "ann " would be a second person beside ann
        if not name:
            raise CnnlabError("a person needs a non-empty name")
        cur = self.conn.cursor()
        _begin(cur, self.path)
        try:
            _warn_if_only_case_differs(cur, self.path, name)
            cur.execute("INSERT OR IGNORE INTO persons(name) VALUES (?)", (name,))
            pid = cur.execute("SELECT id FROM persons WHERE name = ?", (name,)).fetchone()[0]
            rows = cur.execute("SELECT vector FROM embeddings WHERE person_id = ?", (pid,))
            before = [np.frombuffer(r[0], np.float32) for r in rows]
            stored = np.stack(before) if before else None  # (m, D): compared in one go
            added: list[np.ndarray] = []
            row = cur.execute("SELECT length(vector) / 4 FROM embeddings LIMIT 1").fetchone()
            width = row[0] if row else None  # float32s a vector; None: an empty database
            for e in embeddings:  # read one at a time: an enrolment killed midway rolls back
                vector = np.asarray(e, np.float32).ravel()
                width = width or len(vector)  # an empty database takes the first vector's
                _check_vector(self.path, vector, width)
                if _holds(stored, vector) or (added and _holds(np.stack(added), vector)):
                    continue
                cur.execute(
                    "INSERT INTO embeddings(person_id, vector) VALUES (?, ?)",
                    (pid, vector.tobytes()),
                )
                added.append(vector)
            if stored is None and not added:  # a new person with no image: not written
                raise CnnlabError(f"{self.path}: no embedding given to enrol {name!r}")
            if self.encoder is not None:  # with the enrolment: for verify and identify
                kind, file = self.encoder
                cur.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    [("encoder", str(Path(file).resolve())), ("encoder_format", kind)],
                )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return len(added)

    def remove(self, name: str) -> int:
        """Remove ``name`` and their embeddings in one transaction; returns how many images
        they had enrolled."""
        cur = self.conn.cursor()
        _begin(cur, self.path)
        (images,) = cur.execute(
            "SELECT COUNT(e.id) FROM embeddings e JOIN persons p ON p.id = e.person_id "
            "WHERE p.name = ?",
            (name,),
        ).fetchone()
        deleted = cur.execute("DELETE FROM persons WHERE name = ?", (name,)).rowcount
        cur.execute("COMMIT")
        if not deleted:
            raise self.no_person(name)
        return int(images)

    def remove_images(
        self, name: str, embeddings: np.ndarray, sources: list[str] | None = None
    ) -> tuple[int, int]:
        """Remove from ``name`` the enrolled images whose embeddings are ``embeddings (n, D)``
        (each within :data:`SAME_IMAGE` of one: the same image, embedded by this model), in one
        transaction, and the person with their last image; returns ``(removed, left)``. An
        embedding ``name`` holds no image of is refused, naming it as ``sources[i]``, and
        nothing is removed."""
        cur = self.conn.cursor()
        _begin(cur, self.path)
        try:
            row = cur.execute("SELECT id FROM persons WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise self.no_person(name)
            rows = cur.execute(
                "SELECT id, vector FROM embeddings WHERE person_id = ?", (row[0],)
            ).fetchall()
            ids = np.array([r[0] for r in rows])
            stored = np.stack([np.frombuffer(r[1], np.float32) for r in rows]) if rows else None
            gone: set[int] = set()
            for i, e in enumerate(np.asarray(embeddings, np.float32).reshape(len(embeddings), -1)):
                same = (
                    np.flatnonzero(((stored - e) ** 2).sum(1) <= SAME_IMAGE)
                    if stored is not None and stored.shape[1] == e.size
                    else []
                )
                if not len(same):
                    what = sources[i] if sources else f"embedding {i}"
                    raise CnnlabError(f"{what}: not an image enrolled as {name} in {self.path}")
                gone.update(int(x) for x in ids[same])
            cur.executemany("DELETE FROM embeddings WHERE id = ?", [(x,) for x in sorted(gone)])
            left = len(rows) - len(gone)
            if not left:  # no image left: no person (identify could never name them)
                cur.execute("DELETE FROM persons WHERE id = ?", (row[0],))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return len(gone), left

    def no_person(self, name: str) -> CnnlabError:
        """The error for a ``name`` nobody is enrolled as, saying who is: the enrolled name
        nearest to it (``Ann`` for ``ann``, ``ann`` for ``an``), else up to
        :data:`NAMES_SHOWN` of the names, else how many people there are."""
        names = [n for n, _ in self.people()]
        said = f"{self.path}: no person named {name!r}"
        by_fold = {n.casefold(): n for n in names}
        close = difflib.get_close_matches(name.casefold(), list(by_fold), n=1, cutoff=0.65)
        if close:
            return CnnlabError(f"{said}; did you mean {by_fold[close[0]]!r}?")
        if not names:
            return CnnlabError(f"{said}; nobody is enrolled")
        if len(names) <= NAMES_SHOWN:
            return CnnlabError(f"{said} (enrolled: {', '.join(names)})")
        return CnnlabError(f"{said} ({len(names):,} people enrolled: cnnlab faces list names them)")

    def people(self) -> list[tuple[str, int]]:
        """``(name, number of embeddings)`` for everyone enrolled, in the order a person would
        list them: ``ada, Bo, person2, person10`` (SQLite's ``ORDER BY`` puts capitals first
        and ``person10`` before ``person2``)."""
        rows = self.conn.execute(
            "SELECT p.name, COUNT(e.id) FROM persons p LEFT JOIN embeddings e "
            "ON e.person_id = p.id GROUP BY p.id"
        ).fetchall()
        return sorted(rows, key=lambda row: (natural_key(row[0].casefold()), row[0]))

    def gallery(self) -> tuple[list[str], np.ndarray]:
        """Names (one per embedding) and the ``(n, D)`` embeddings."""
        rows = self.conn.execute(
            "SELECT p.name, e.vector FROM embeddings e JOIN persons p "
            "ON p.id = e.person_id ORDER BY e.id"
        ).fetchall()
        if not rows:
            return [], np.zeros((0, 0), np.float32)
        return [r[0] for r in rows], np.stack([np.frombuffer(r[1], np.float32) for r in rows])

    def close(self) -> None:
        self.conn.close()
