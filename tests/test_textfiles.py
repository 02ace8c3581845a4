"""Class lists as users and tools write them: cnnlab's own writer, a byte-order mark, a file
that is not text."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnlab.data.textfiles import read_names, sorted_names, write_names
from cnnlab.errors import CnnlabError

# a class name is one line with no spaces at either end: no control or line-separator characters
NAME = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=10
).filter(lambda t: t.strip() == t)


@given(names=st.lists(NAME, min_size=1, max_size=6))
def test_written_class_lists_read_back_as_written(names: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "classes.txt"
        write_names(path, names)
        assert read_names(path) == names
        path.read_bytes().decode("utf-8")  # UTF-8 whatever the locale


def test_a_byte_order_mark_and_blank_lines_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "classes.txt"
    path.write_bytes("\ufeffcat\r\n\r\n  dog \r\ncafé\r\n".encode())
    assert read_names(path) == ["cat", "dog", "café"]


def test_a_file_that_is_not_text_is_named(tmp_path: Path) -> None:
    path = tmp_path / "classes.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(CnnlabError, match=r"classes\.txt: not a UTF-8 text file"):
        read_names(path)


def test_whole_numbers_sort_as_numbers_else_alphabetically() -> None:
    assert sorted_names({"10", "2", "-1"}) == ["-1", "2", "10"]
    assert sorted_names({"10", "2", "b"}) == ["10", "2", "b"]
