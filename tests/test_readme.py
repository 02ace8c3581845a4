"""The README's Python examples run as written (in a scratch folder, with the one image they
name drawn from the digits)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest
from PIL import Image

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnlab.data.classification import load_digits

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    seven = load_digits().splits["test"].images[3, 0].numpy()
    Image.fromarray(255 - seven).save(tmp_path / "my_digit.png")  # dark ink on white paper
    for i, block in enumerate(blocks):
        script = tmp_path / f"readme_{i}.py"
        script.write_text(block)
        runpy.run_path(str(script), run_name="readme")
    assert (tmp_path / "runs" / "py-digits" / "best.pt").is_file()


def test_readme_command_lines_parse() -> None:
    """Every `cnnlab ...` line in the README's shell blocks (continuations joined, comments and
    `...` placeholders dropped, `&&` chains split, `python -m cnnlab` under torchrun too) is
    accepted by the CLI's parser: a renamed option or choice shows here, not in a user's shell."""
    import shlex

    from cnnlab.cli import build_parser

    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            for part in line.split("&&") if not line.startswith("#") else []:
                words = shlex.split(part)
                if "cnnlab" in words and (words[0] == "cnnlab" or "-m" in words):
                    start = words.index("cnnlab") + 1
                    commands.append([w for w in words[start:] if w != "..."])
    assert len(commands) > 60
    for argv in commands:
        build_parser().parse_args(argv)  # a CnnlabError names the line's problem
