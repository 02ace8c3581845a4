"""The command line: every subcommand's JSON, and one-line errors with exit code 2."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from cnnlab.cli import main
from cnnlab.errors import CnnlabError

from slide_examples import (
    EDGE_INPUT,
    EDGE_OUTPUT,
    FILTER_1D,
    OUTPUT_1D,
    POOL_INPUT,
    POOL_MAX,
    SIGNAL_1D,
    STRIDED_FILTER,
    STRIDED_INPUT,
    TRANSPOSE_CONV_OUTPUT,
    TRANSPOSE_KERNEL,
)


def text(rows: list[list[float]]) -> str:
    return ";".join(" ".join(str(v) for v in row) for row in rows)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def run_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("cnnlab: error:")
    return err


def test_explain_conv_slide(capsys: pytest.CaptureFixture[str]) -> None:
    r = run_json(
        capsys,
        "explain",
        "conv",
        "--input",
        text(EDGE_INPUT),
        "--filter",
        "vertical",
        "--p",
        "0",
        "--s",
        "1",
    )
    assert r["output"] == EDGE_OUTPUT
    assert r["formula"][0] == "floor((6 + 2*0 - 3) / 1) + 1 = 4"
    assert r["first_cell"].endswith("= -5")


def test_explain_conv_1d_slide(capsys: pytest.CaptureFixture[str]) -> None:
    """A signal is a one-row matrix: the slide's 1D example through the same command."""
    signal, taps = " ".join(map(str, SIGNAL_1D)), " ".join(map(str, FILTER_1D))
    r = run_json(capsys, "explain", "conv", "--input", signal, "--filter", taps)
    assert r["output"] == [OUTPUT_1D]
    assert r["first_cell"] == "1*1 + 20*3 + 15*10 + 3*3 + 18*1 = 238"


def test_explain_conv_strided_and_same(capsys: pytest.CaptureFixture[str]) -> None:
    r = run_json(
        capsys,
        "explain",
        "conv",
        "--input",
        text(STRIDED_INPUT),
        "--filter",
        text(STRIDED_FILTER),
        "--s",
        "2",
    )
    assert r["output_shape"] == [3, 3] and r["output"][0][:2] == [91, 100]
    r = run_json(
        capsys, "explain", "conv", "--input", text(EDGE_INPUT), "--filter", "sobel", "--p", "same"
    )
    assert r["output_shape"] == [6, 6] and r["p"] == 1


def test_explain_conv_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    r = run_json(
        capsys,
        "explain",
        "conv",
        "--n",
        "6",
        "--f",
        "3",
        "--p",
        "1",
        "--s",
        "2",
        "--channels",
        "3",
        "--filters",
        "2",
    )
    assert r["output_shape"] == [3, 3, 2]
    assert r["parameters"] == (3 * 3 * 3 + 1) * 2


def test_explain_titles_are_never_cut(capsys: pytest.CaptureFixture[str]) -> None:
    """A 1x1 output is narrower than its title: the title shows whole, not as "ou…"."""
    assert main(["explain", "pool", "--input", "1 2;3 4", "--f", "2", "--s", "2"]) == 0
    shown = capsys.readouterr().out
    assert "output" in shown and "…" not in shown


def test_explain_pool_and_transpose(capsys: pytest.CaptureFixture[str]) -> None:
    r = run_json(
        capsys,
        "explain",
        "pool",
        "--input",
        text(POOL_INPUT),
        "--f",
        "2",
        "--s",
        "2",
        "--mode",
        "max",
    )
    assert r["output"] == POOL_MAX
    r = run_json(
        capsys,
        "explain",
        "transpose",
        "--input",
        text(TRANSPOSE_CONV_OUTPUT),
        "--filter",
        text(TRANSPOSE_KERNEL),
        "--s",
        "1",
        "--p",
        "0",
    )
    assert r["output_shape"] == [4, 4] and r["methods_agree"] is True
    assert r["conv_matrix_shape"] == [4, 16]
    r = run_json(
        capsys,
        "explain",
        "transpose",
        "--input",
        "1 2;3 4",
        "--filter",
        "1 1 1;1 1 1;1 1 1",
        "--s",
        "2",
        "--p",
        "1",
    )
    assert r["output_shape"] == [3, 3] and r["methods_agree"] is True
    assert r["zero_inserted"] == [[1, 0, 2], [0, 0, 0], [3, 0, 4]]


def test_explain_transpose_crops_when_p_exceeds_k_minus_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """PyTorch takes p > k - 1 (it crops the output); step (a)'s border k - p - 1 is then
    negative: the zero-inserted input is cropped, not refused as it was."""
    x = torch.arange(1.0, 17.0).reshape(4, 4)
    r = run_json(
        capsys,
        *("explain", "transpose", "--input", text(x.tolist()), "--filter", "1 2;3 4"),
        *("--s", "2", "--p", "2"),
    )
    expected = F.conv_transpose2d(x[None, None], torch.tensor([[[[1.0, 2], [3, 4]]]]), None, 2, 2)
    assert r["output"] == expected[0, 0].tolist() and r["methods_agree"] is True
    assert r["padding_after_insertion"] == -1 and len(r["zero_inserted_padded"]) == 5
    assert main(["explain", "transpose", "--input", "1 2;3 4", "--filter", "1 1;1 1"]) == 0
    assert "pad k-p-1 = 1" in capsys.readouterr().out
    argv = ["explain", "transpose", "--input", text(x.tolist()), "--filter", "1 1;1 1"]
    assert main([*argv, "--s", "2", "--p", "2"]) == 0
    assert "crop p-k+1 = 1" in capsys.readouterr().out


def test_explain_cost(capsys: pytest.CaptureFixture[str]) -> None:
    r = run_json(
        capsys, "explain", "cost", "--input", "6x6x3", "--f", "3", "--filters", "5", "--separable"
    )
    assert (r["baseline_macs"], r["alternative_macs"]) == (2160, 672)
    r = run_json(
        capsys,
        "explain",
        "cost",
        "--input",
        "28x28x192",
        "--f",
        "5",
        "--filters",
        "32",
        "--bottleneck",
        "16",
    )
    assert r["baseline_macs"] == 120_422_400 and r["alternative_macs"] == 12_443_648
    r = run_json(
        capsys,
        "explain",
        "cost",
        "--input",
        "6x6x64",
        "--f",
        "3",
        "--filters",
        "128",
        "--expansion",
        "6",
    )
    assert r["alternative_macs"] == 2_778_624


def test_explain_with_no_numbers_shows_the_slides_example(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`cnnlab explain conv` (pool, transpose, cost, iou, scale) with none of its numbers was an
    error; it now works the slide's own example, says which, and an option given keeps its
    value."""
    r = run_json(capsys, "explain", "conv")
    assert r["output"] == EDGE_OUTPUT and r["input"] == EDGE_INPUT
    assert r["example"].startswith('the slide "Vertical edge detection"')
    r = run_json(capsys, "explain", "conv", "--filter", "horizontal")  # the slide's input
    assert r["filter"] == [[1, 1, 1], [0, 0, 0], [-1, -1, -1]] and r["input"] == EDGE_INPUT
    assert "its 6x6 input" in r["example"] and "filter" not in r["example"]
    assert run_json(capsys, "explain", "pool")["output"] == POOL_MAX
    r = run_json(capsys, "explain", "transpose")
    assert r["input"] == TRANSPOSE_CONV_OUTPUT and r["output_shape"] == [4, 4]
    r = run_json(capsys, "explain", "cost")  # the slide's 120m vs 12.4m
    assert (r["baseline_macs"], r["alternative_macs"]) == (120_422_400, 12_443_648)
    r = run_json(capsys, "explain", "cost", "--separable")  # compared as asked, not twice
    assert "separable" in r["title"] and "bottleneck" not in r["example"]
    assert run_json(capsys, "explain", "scale")["depth"] == pytest.approx(1.2)  # phi = 1
    assert main(["explain", "conv"]) == 0  # and says so before the drawing
    assert capsys.readouterr().out.startswith('the slide "Vertical edge detection": its 6x6')
    r = run_json(capsys, "explain", "iou")  # a car's true and predicted box: 672 / 884
    assert (r["intersection"], r["union"], r["correct"]) == (672, 884, True)
    assert run_error(capsys, "explain", "iou", "--b", "0 0 1 1").endswith(
        "give --a and --b together (neither: an example)"
    )
    # shapes alone, or a partial cost, are the user's, not the example's
    assert "example" not in run_json(capsys, "explain", "conv", "--n", "6", "--f", "3")
    err = run_error(capsys, "explain", "cost", "--f", "3")
    assert err == "cnnlab: error: explain cost: give --input, --f and --filters together"


def test_explain_draws_the_worked_examples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--out`` draws the input (padded when it is), filter and output of conv, pool and
    transpose; shapes alone have no numbers to draw."""
    for argv in (
        ["conv"],
        ["conv", "--p", "1"],
        ["pool"],
        ["pool", "--p", "1"],  # padding without a padded_input to show (it was a KeyError)
        ["transpose"],
        ["transpose", "--p", "1"],
        ["conv", "--input", "1 20 15 3 18 12 4 17", "--filter", "1 3 10 3 1"],
    ):
        png = tmp_path / f"{'_'.join(argv)[:20]}.png"
        r = run_json(capsys, "explain", *argv, "--out", str(png))
        assert r["figure"] == str(png) and png.stat().st_size > 5000
    err = run_error(capsys, "explain", "conv", "--n", "6", "--f", "3", "--out", "x.png")
    assert err.endswith("--out draws the numbers of a worked example: give --input, not --n")


@pytest.mark.parametrize(
    "argv, shown",
    [
        (
            ["conv", "--input", text(EDGE_INPUT), "--filter", "vertical"],
            ["-16", "floor((6 + 2*0 - 3) / 1) + 1 = 4"],
        ),
        (["pool", "--input", text(POOL_INPUT), "--f", "2", "--s", "2"], ["max pool", "f=2 s=2"]),
        (
            ["transpose", "--input", "1 2;3 4", "--filter", "1 1 1;1 1 1;1 1 1", "--s", "2"],
            ["convolution matrix C", "4  10  6", "F.conv_transpose2d: True"],
        ),
        (["transpose", "--n", "2", "--f", "3", "--s", "2", "--p", "1"], ["(2 - 1)*2 + 3 - 2*1"]),
        (
            ["cost", "--input", "28x28x192", "--f", "5", "--filters", "32", "--bottleneck", "16"],
            ["120,422,400", "12,443,648", "ratio 0.1033"],
        ),
        (
            ["cost", "--input", "6x6x3", "--f", "3", "--filters", "5", "--separable"],
            ["2,160", "672", "1/5 + 1/9 = 0.3111"],
        ),
        (["scale", "--phi", "2"], ["1.920", "B7", "296"]),
        (["receptive-field", "lenet5"], ["features.conv2", "14"]),
    ],
)
def test_human_output_is_printed(
    capsys: pytest.CaptureFixture[str], argv: list[str], shown: list[str]
) -> None:
    """Without --json each explain command draws its tables (not only the JSON path runs)."""
    assert main(["explain", *argv]) == 0
    out = capsys.readouterr().out
    for figure in shown:
        assert figure in out, (figure, out)


@pytest.mark.parametrize(
    "argv, shown",
    [
        (["models", "lenet*"], ["lenet5_classic", "classification", "61,706", "60,000"]),
        (["models", "--ledger", "lenet5_classic"], ["60,000", "LeCun et"]),
        # VGG's counts were cut in two at 80 columns ("132,863," over "336")
        (["models", "--ledger", "vgg11"], ["132,863,336", "7.609", "torchvision"]),
        (["models", "alexnet"], ["60,965,224", "Krizhevsky et al.,"]),
        (["explain", "sliding-windows", "--image-size", "16"], ["output grid 2x2 (4 windows)"]),
    ],
)
def test_tables_are_drawn(capsys: pytest.CaptureFixture[str], argv: list[str], shown: list[str]):
    """The human views of the model list, the ledger and the sliding-window comparison, at the
    80 columns of a non-terminal: names and counts are whole, not cut to an ellipsis."""
    assert main(argv) == 0
    out = capsys.readouterr().out
    for figure in shown:
        assert figure in out, (figure, out)


def test_summary_and_models(capsys: pytest.CaptureFixture[str]) -> None:
    r = run_json(capsys, "summary", "lenet_course", "--input", "3x32x32")
    assert [row["params"] for row in r["rows"]] == [608, 0, 3216, 0, 48120, 10164, 850]
    assert r["rows"][0]["slide_shape"] == [28, 28, 8]
    assert main(["summary", "lenet5_classic"]) == 0
    assert "60,000" in capsys.readouterr().out
    # lenet5 is made for 1x32x32; an RGB input shows the lenet5 an RGB folder trains (was
    # "3x32x32 inputs do not fit lenet5 ...: Invalid channel dimensions")
    from cnnlab.registry import create_model

    rgb = create_model("lenet5", in_channels=3)
    r = run_json(capsys, "summary", "lenet5", "--input", "3x32x32")
    assert r["total_params"] == sum(p.numel() for p in rgb.parameters()) == 61_706 + 2 * 150
    # at 80 columns (captured output) the last column used to be cut off: "M M" and no MACs
    assert main(["summary", "resnet18"]) == 0
    out = capsys.readouterr().out
    assert "M MACs" in out and "118.014" in out and max(map(len, out.splitlines())) <= 80
    # and every layer's name on one line (the downsample layers' used to wrap: "layer2.0.downs")
    lines = out.splitlines()
    assert any(line.startswith("layer2.0.downsample.0 ") for line in lines)
    assert any(line.startswith("layer4.1.bn2 ") and "1,024" in line for line in lines)
    r = run_json(capsys, "models")
    assert {m["name"] for m in r["models"]} >= {"lenet5", "lenet5_classic", "lenet_course"}
    r = run_json(capsys, "models", "--task", "segmentation")
    assert {m["name"] for m in r["models"]} == {"unet", "unet_paper", "unet_resnet18"}
    assert {m["task"] for m in r["models"]} == {"segmentation"}
    # --task filters the ledger too (it was ignored there); a filter matching nothing says so
    # instead of drawing an empty table
    assert run_json(capsys, "models", "--ledger", "--task", "detection") == {"ledger": []}
    ledger = run_json(capsys, "models", "--ledger", "resnet*", "--task", "classification")
    assert ledger["ledger"] and all(r["model"].startswith("resnet") for r in ledger["ledger"])
    assert main(["models", "zzz*"]) == 0
    said = capsys.readouterr().out.strip()
    assert said == "no registered model matches 'zzz*'; cnnlab models lists them all"


def test_paths_the_system_refuses_are_one_line_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A folder where a file goes, a file where a folder goes, a suffix nothing can write:
    one line naming the path, exit 2, before any long work; a figure without a suffix is a PNG
    and the JSON names the file really written."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    for argv, fragment in [
        (["data", "list", "--root", str(a_file)], "not a folder"),
        (["data", "download", "mnist", "--root", str(a_file)], "not a folder"),
        (["style", "-o", str(tmp_path)], "a folder"),
        (["augment", "-o", str(tmp_path)], "a folder"),
        (["augment", "-o", str(tmp_path / "grid.xyz")], "cannot write .xyz figures"),
        (["classify", "train", "--pretrained", str(a_file)], "not a readable weights file"),
        (["augment", "-o", str(a_file / "grid.png")], "notes.txt: a file, where a folder is"),
        (["augment", "-o", str(a_file / "a" / "g.png")], "notes.txt: a file, where a folder is"),
    ]:
        err = run_error(capsys, *argv)
        assert str(tmp_path) in err and fragment in err
    r = run_json(capsys, "augment", "--images", "2", "--variants", "1", "-o", str(tmp_path / "g"))
    assert r["figure"] == str(tmp_path / "g.png") and (tmp_path / "g.png").is_file()


def test_edges_commands(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    r = run_json(capsys, "edges", "apply", "--image", "coins", "--out", str(tmp_path))
    assert (tmp_path / "edges.png").stat().st_size > 10_000
    assert set(r["maps"]) == {"vertical", "horizontal", "sobel", "scharr"}
    # the photo typed last, as every predict command takes it: the same maps as --image
    typed_last = run_json(capsys, "edges", "apply", "--out", str(tmp_path), "coins")
    assert typed_last["image"] == "coins" and typed_last["maps"] == r["maps"]
    assert run_json(capsys, "edges", "apply", "--out", str(tmp_path))["image"] == "camera"
    err = run_error(capsys, "edges", "apply", "--image", "coins", "camera")
    assert err.endswith("two photos to filter, --image coins and camera: give one")
    r = run_json(
        capsys,
        "edges",
        "learn",
        "--target",
        "sobel",
        "--images",
        "camera",
        "--size",
        "48",
        "--steps",
        "60",
    )
    assert r["max_abs_error"] < 1e-4


# a ResNet-18 at 32 px ends in 1x1 maps: batch norm cannot train on one image per batch
ONE_IMAGE_AT_32 = ("--image-size", "32", "--batch-size", "1")


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["explain", "conv", "--input", "1 2;3 4", "--filter", "vertical", "--s", "-1"], "--s"),
        (
            ["explain", "conv", "--input", "1 2;3 4", "--filter", "vertical"],
            "larger than the padded",
        ),
        (["explain", "conv", "--input", "1 2;3", "--filter", "vertical"], "different lengths"),
        (["explain", "conv", "--input", "1 x;3 4", "--filter", "1"], "'x', which is not a number"),
        (["explain", "conv", "--input", "6x6", "--f", "3"], "'6x6': give the matrix's numbers"),
        (["explain", "conv", "--input", "1 2;3 inf", "--filter", "1"], "'inf'; give finite"),
        (["explain", "iou", "--a", "nan 0 1 1", "--b", "0 0 1 1"], "'nan'; give finite numbers"),
        (["explain", "nms", "--boxes", "0 0 1 1 1e999"], "row 1 has '1e999'; give finite"),
        (
            ["explain", "conv", "--input", "1 2;3 4", "--filter", "1 1;1 1", "--p", "same"],
            "odd kernel",
        ),
        (["explain", "conv", "--input", "1 2;3 4", "--filter", "blur"], "unknown filter"),
        (["explain", "conv", "--f", "3"], "give --input"),
        (["explain", "conv", "--input", "1 2;;3 4", "--filter", "1"], "empty matrix row"),
        (["explain", "conv", "--input", "1 2 3;3 4 5;1 1 1"], "--filter is needed with --input"),
        (
            ["explain", "conv", "--input", "1 2 3;4 5 6;7 8 9", "--filter", "1 1 1", "--p", "same"],
            "needs a square filter",
        ),
        (["explain", "cost", "--filters", "2"], "give --input, --f and --filters together"),
        (["explain", "transpose", "--n", "2"], "or --n and --f for shapes"),
        (["explain", "transpose", "--input", "1 2;3 4"], "--filter is needed with --input"),
        (
            ["explain", "transpose", "--input", "1 2;3 4", "--filter", "1 1 1;1 1 1"],
            "must be square",
        ),
        (["explain", "cost", "--input", "6x5x3", "--f", "3", "--filters", "2"], "square input"),
        (["explain", "pool", "--input", "1 2;3 4", "--f", "3"], "larger than the padded"),
        (["explain", "cost", "--input", "6x6", "--f", "3", "--filters", "5"], "HxWxC"),
        (
            [
                "explain",
                "cost",
                "--input",
                "6x6x3",
                "--f",
                "3",
                "--filters",
                "5",
                "--separable",
                "--bottleneck",
                "2",
            ],
            "choose one",
        ),
        (["summary", "resnet9000"], "unknown model"),
        (["summary", "lenet5", "--input", "1x8x8"], "1x8x8 inputs do not fit lenet5 (made for"),
        (["summary", "lenet5", "--input", "1xAx8"], "expected sizes"),
        (["summary", "vgg16", "--input", "3x224"], "--input 3x224: vgg16 takes 3 sizes (3x224x2"),
        (  # was "inputs do not fit conv3d_net ...", batch norm's complaint about a 4-D input
            ["summary", "conv3d_net", "--input", "3x97x97"],
            "--input 3x97x97: conv3d_net takes 4 sizes (1x16x32x32: channels first)",
        ),
        (["summary", "conv3d_net", "--input", "1x2x97x97"], "inputs do not fit conv3d_net"),
        (["classify", "train", "--epochs", "0"], "--epochs"),
        (["classify", "train", "--lr", "-1", "--out", "/nonexistent/never"], "--lr"),
        (["classify", "train", "--model", "nope"], "unknown model"),
        (["classify", "train", "--device", "cuda:7"], "device"),
        (["classify", "eval", "--checkpoint", "/no/such.pt"], "no such checkpoint"),
        (["faces", "train", "--lr", "0"], "--lr: must be > 0"),
        (["faces", "train", "--augment", "sparkle"], "unknown augmentation 'sparkle'"),  # first
        (["faces", "train", "--alpha", "-0.5"], "--alpha: must be >= 0"),
        (["faces", "train", "--margin", "nan"], "finite number"),
        (["faces", "train", "--p", "1", "--out", "/nonexistent/never"], "--p must be at least 2"),
        (["faces", "train", "--k", "1", "--out", "/nonexistent/never"], "--k must be at least 2"),
        (["faces", "train", "--k", "200", "--out", "/nonexistent/never"], "at most 2048"),
        (["edges", "apply", "--image", "/no/such.png"], "no such file"),
        (["edges", "apply", "camra"], "not a sample image (camera, astronaut, "),  # a typo
        (["edges", "apply", "camra"], "checkerboard); did you mean camera?"),
        (["style", "astronot", "brick"], "not a bundled photo (astronaut, "),
        (["style", "astronot", "brick"], "; did you mean astronaut?"),
        # a web address where a file goes: nothing fetched, and the address not read as a path
        (["edges", "apply", "--image", "https://x.org/a.png"], "https://x.org/a.png: a web"),
        (["visualize", "filters", "--weights", "https://x.org/w.pth"], "w.pth: a web address"),
        (["detect", "train", "--data", "http://x.org/coco.json"], "coco.json: a web address"),
        (
            ["segment", "predict", "--checkpoint", "x.pt", "--out", "s3://bucket/run"],
            "s3://bucket/run: a web address",
        ),
        (["detect", "predict", "--checkpoint", "x.pt", "--score-threshold", "2"], "between 0"),
        (["detect", "predict", "--checkpoint", "x.pt", "--iou-threshold", "-0.1"], "between 0"),
        (["detect", "train", "--max-objects", "0"], "--max-objects: must be >= 1"),
        (["style", "--alpha", "-1"], "--alpha: must be >= 0"),
        (["style", "--beta", "-1"], "--beta: must be >= 0"),
        (["style", "--tv", "nan"], "finite number"),
        (["visualize", "activations", "--index", "-1"], "--index: must be >= 0"),
        (["classify", "train", "--model", "unet"], "a segmentation model, not a classification"),
        (["faces", "train", "--backbone", "yolo"], "--backbone yolo: a detection model"),
        (["localize", "train", "--backbone", "siamese"], "an embedding model"),
        (["classify", "train", "--image-size", "4"], "1x4x4 inputs do not fit"),
        (["segment", "train", "--model", "lenet5"], "a classification model, not a segmentation"),
        (["segment", "train", "--image-size", "8"], "3x8x8 inputs do not fit unet"),
        (["segment", "train", "--class-weights", "a,b"], "expected none, balanced, or numbers"),
        (["classify", "train", "--model", "conv3d_net"], "takes 1x16x32x32 inputs (3-D data), not"),
        (["faces", "train", "--backbone", "conv1d_net"], "takes 1x256 inputs (1-D data), not"),
        (["faces", "train", "--embedding-dim", "1"], "--embedding-dim 1: at least 2"),
        (["faces", "train", "--method", "cosface", "--mining", "random"], "--mining is for"),
        (
            ["classify", "train", "--model", "resnet18", *ONE_IMAGE_AT_32],
            "--batch-size 1: resnet18's batch norm meets 1x1 maps at 1x32x32",
        ),
        (
            ["segment", "train", "--model", "unet_resnet18", *ONE_IMAGE_AT_32],
            "unet_resnet18's batch norm meets 1x1 maps",
        ),
        (
            ["detect", "train", "--backbone", "resnet18", *ONE_IMAGE_AT_32, "--images", "20"],
            "yolo (resnet18)'s batch norm meets 1x1 maps",
        ),
        (
            ["localize", "train", "--backbone", "resnet18", *ONE_IMAGE_AT_32, "--images", "20"],
            "the localizer (resnet18)'s batch norm meets 1x1 maps",
        ),
        (["faces", "train", "--method", "similarity", "--alpha", "0.3"], "--alpha is for"),
        (["faces", "train", "--margin", "0.1"], "triplet does not use it"),
        (["faces", "train", "--scale", "30"], "--scale is for --method cosface"),
        (["edges", "learn", "--lr", "0.5"], "--lr is Adam's learning rate (--optimizer adam)"),
        (["style", "--optimizer", "lbfgs", "--lr", "0.5"], "(--optimizer adam); --optimizer lbfgs"),
        (
            ["detect", "train", "--data", "my_yolo", "--images", "500", "--max-objects", "3"],
            "--images and --max-objects describe the generated scenes; --data my_yolo brings "
            "its own images and classes",
        ),
        (
            ["localize", "train", "--data", "a.json", "--num-classes", "5"],
            "--num-classes describes",
        ),
        (["segment", "train", "--data", "pets", "--images", "10"], "--data pets brings its own"),
        (
            ["classify", "train", "--freeze", "backbone", "--backbone-lr-mult", "0.1"],
            "--backbone-lr-mult scales the backbone's learning rate, and --freeze backbone "
            "trains none of it",
        ),
        (
            ["detect", "train", "--freeze", "backbone", "--backbone-lr-mult", "0.1"],
            "--backbone-lr-mult scales the backbone's learning rate, and --freeze backbone "
            "trains none of it",
        ),
        (["faces", "train", "--freeze", "stage:2"], "--freeze must be none, backbone or stages:K"),
        (["localize", "train", "--freeze", "stages:-1"], "(K a whole number), got 'stages:-1'"),
        (
            ["segment", "train", "--freeze", "backbone", "--images", "4"],
            "--pretrained, --freeze and --backbone-lr-mult are for a U-Net with a classifier's "
            "encoder (--model unet_resnet18); unet has none",
        ),
        (
            ["faces", "train", "--synthetic", "none", "--synthetic-identities", "50"],
            "--synthetic-identities counts the glyph identities, and --synthetic none draws none",
        ),
        (["faces", "train", "--method", "cosface", "--scale", "0"], "--scale: must be > 0"),
        (
            ["classify", "train", "--image-size", "16"],
            "1x16x16 inputs do not fit lenet5 (made for 1x32x32",
        ),
        (["segment", "train", "--class-weights", "1,-1,1,1"], ">= 0"),
        (["style", "-o", "out.xyz"], "not an image file name"),
        (["style", "--size", "64", "--steps", "1"], "--steps 1: fewer than one per level"),
        (["edges", "apply", "--filters", " , "], "--filters: give at least one of vertical"),
        (["edges", "apply", "--image", "."], ".: a folder, not an image file"),
        (["faces", "train", "--pool-size", "6"], "lenet5's feature map at 32 px is 5x5"),
        (["edges", "learn", "--images", ""], "--images: give at least one sample name"),
        (["detect", "train", "--images", "1"], "1 image: too few to split"),
        (
            ["classify", "train", "--resume", "r/last.pt", "--epochs", "3"],
            "drop --epochs (its learning-rate schedule spans its own epochs: to train longer, "
            "start a new run, e.g. from its weights: --pretrained r/best.pt)",
        ),
        (["localize", "train", "--images", "2"], "2 images: too few to split"),
        (["detect", "train", "--resume", "r/last.pt", "--no-mirror"], "drop --no-mirror"),
        (["segment", "train", "--images", "2"], "2 images: too few to split"),
        (["nonsense"], "cnnlab: error: no command 'nonsense'; give one of: models, summary,"),
        (["classify", "train", "--split-seed", "-1"], "--split-seed: must be >= 0"),
        (["augment", "--seed", str(2**32)], f"--seed: must be at most {2**32 - 1}"),
        (["localize", "train", "--seed", "-1"], "--seed: must be >= 0"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    assert fragment in run_error(capsys, *argv)


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (  # was "--backbone-lr-mult: invalid float value" (argparse's abbreviations)
            ["classify", "train", "--backbone", "resnet18"],
            "cnnlab classify train: unrecognized arguments: --backbone resnet18 "
            "(this command calls it --model)",
        ),
        (
            ["faces", "train", "--model", "resnet18"],
            "cnnlab faces train: unrecognized arguments: --model resnet18 "
            "(this command calls it --backbone)",
        ),
        (
            ["classify", "train", "--bacth-size=8"],
            "cnnlab classify train: unrecognized arguments: --bacth-size=8 "
            "(did you mean --batch-size?)",
        ),
        (  # an abbreviation is not taken: a new option could change what it means
            ["detect", "train", "--epoch", "3"],
            "cnnlab detect train: unrecognized arguments: --epoch 3 (this command calls it "
            "--epochs)",
        ),
        (
            ["classify", "train", "--lerning-rate", "0.1"],
            "(this command calls it --lr)",
        ),
        (
            ["segment", "predict", "--checkpoint", "c.pt", "--output-dir", "m"],
            "(this command calls it --out)",
        ),
        (  # Ultralytics' names
            ["detect", "train", "--imgsz", "64", "--batch", "8"],
            "--imgsz 64 --batch 8 (this command calls it --image-size)",
        ),
        (["detect", "train", "--batch", "8"], "(this command calls it --batch-size)"),
        (
            ["data", "scenes", "--format", "coco", "--out", "s", "--count", "5"],
            "(this command calls it --images)",
        ),
        (["segment", "predict", "--checkpoint", "c.pt", "--count", "5"], "calls it --scenes)"),
        (  # the command is called scenes; how many is --images, as for training
            ["data", "scenes", "--format", "yolo", "--out", "s", "--scenes", "20"],
            "--scenes 20 (this command calls it --images)",
        ),
        (["detect", "train", "--scenes", "20"], "(this command calls it --images)"),
        (
            ["models", "--jsn"],
            "cnnlab models: unrecognized arguments: --jsn (did you mean --json?)",
        ),
        (  # what argparse's abbreviation used to take it for
            ["classify", "train", "--val", "0.1"],
            "(did you mean --val-fraction?)",
        ),
        (  # the root's error does not say "cnnlab: " twice
            [],
            "cnnlab: error: give one of: models, summary, explain, edges, classify, export",
        ),
        (
            ["classify"],
            "cnnlab classify: give one of: train, eval, predict (`cnnlab classify --help`",
        ),
        (  # not argparse's "argument what: invalid choice: 'evaluate' (choose from ...)"
            ["classify", "evaluate"],
            "cnnlab classify: no subcommand 'evaluate'; give one of: train, eval, predict; "
            "did you mean eval?",
        ),
        (["clasify"], "cnnlab: error: no command 'clasify'; give one of: models, summary"),
        (["clasify"], "data, runs; did you mean classify?"),
        (["classify", "train", "--precision", "bf61"], "; did you mean bf16?"),
        (["classify", "train", "--data", "mnst"], "not a folder; did you mean mnist?"),
        (["data", "download", "fashion_mnist"], "'fashion_mnist'; did you mean fashion-mnist?"),
        (["summary", "resnt18"], "unknown model 'resnt18'; did you mean resnet18,"),
        (["faces", "train", "--augment", "crop,eras"], "'eras'; did you mean erase?"),
        (  # a positional argument given as an option swallowed the value and said no more
            ["style", "--content", "x.jpg"],
            "cnnlab style: unrecognized arguments: --content (content is given by position: "
            "cnnlab style CONTENT STYLE)",
        ),
        (["summary", "--model", "resnet18"], "(model is given by position: cnnlab summary MODEL)"),
        (  # was "give one of: models, ...": argparse asks for the command before the options
            ["--jsn"],
            "cnnlab: error: unrecognized arguments: --jsn (did you mean --json?)",
        ),
        (["classify", "--jsn"], "cnnlab classify: unrecognized arguments: --jsn (did you mean"),
        (["edges", "apply", "--filters", "sobell"], "'sobell'; did you mean sobel?"),
    ],
)
def test_misspelt_commands_and_options_are_named_with_the_nearest(
    capsys: pytest.CaptureFixture[str], argv: list[str], line: str
) -> None:
    assert line in run_error(capsys, *argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["--json", "classify", "train", "--data", "no-such-folder"],  # the command's refusal
        ["classify", "train", "--json", "--bacth", "3"],  # argparse's
        ["--json", "edges", "apply", "--image", "."],  # an OSError's path
    ],
)
def test_errors_under_json_end_stdout_with_a_json_object(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """A script reading the last stdout line of a failed ``--json`` command gets why, not an
    empty stdout; the line on stderr says the same."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    said = json.loads(captured.out.strip().splitlines()[-1])
    assert said["exit_code"] == 2
    assert captured.err.strip() == f"cnnlab: error: {said['error']}"


def test_unknown_words_without_a_near_option_get_no_guess(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_error(capsys, "classify", "train", "--zzz", "extra").endswith(
        "cnnlab classify train: unrecognized arguments: --zzz extra"
    )
    assert run_error(capsys, "explain", "qqq").endswith("yolo-target, rcnn, scale, triplet")


def test_sizes_too_large_for_the_memory_are_one_line_errors(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch's allocator failing (``edges learn --size 100000``: 74.5 GiB for one tensor) was
    its traceback; style transfer at ``--size 50000`` was killed by the OS after a minute, with
    no word: it is refused first, from the memory it was measured to need."""
    import torch

    from cnnlab.errors import out_of_memory

    err = run_error(capsys, "edges", "learn", "--target", "sobel", "--size", "100000")
    assert "out of memory (torch asked for 74.5 GiB at once); lower the sizes" in err
    cuda = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0")
    assert out_of_memory(cuda) == "torch asked for 20.0 GiB at once"
    mps = RuntimeError("MPS backend out of memory (MPS allocated: 1 GB). Tried to allocate 2 MiB")
    assert out_of_memory(mps) == "torch asked for 2.0 MiB at once"  # the last straw
    assert out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied")) is None

    import cnnlab.data.memory as memory

    monkeypatch.setattr(memory, "physical_memory", lambda: 8 * 2**30)
    err = run_error(capsys, "style", "astronaut", "coffee", "--size", "1400", "--device", "cpu")
    assert "style transfer at 1400 x 1400 px needs about 6.1 GiB in memory" in err


def test_debug_shows_the_traceback() -> None:
    from cnnlab.errors import CnnlabError

    with pytest.raises(CnnlabError):
        main(["summary", "resnet9000", "--debug"])


@pytest.mark.parametrize(
    "command, module, cls",
    [
        (["classify", "train"], "cnnlab.config", "ClassifyTrainConfig"),
        (["localize", "train"], "cnnlab.engine.localize", "LocalizeConfig"),
        (["detect", "train"], "cnnlab.engine.detect", "DetectConfig"),
        (["segment", "train"], "cnnlab.engine.segment", "SegmentConfig"),
        (["faces", "train"], "cnnlab.engine.faces", "FacesConfig"),
    ],
)
def test_train_commands_default_to_the_python_defaults(
    command: list[str], module: str, cls: str
) -> None:
    """One source of defaults: a bare ``train`` command builds exactly the settings dataclass's
    defaults, and an option reaches its field."""
    import importlib

    from cnnlab.cli import build_parser
    from cnnlab.cli.common import config_from_args

    config_cls = getattr(importlib.import_module(module), cls)
    args = build_parser().parse_args(command)
    assert config_from_args(config_cls, args) == config_cls()
    changed = config_from_args(config_cls, build_parser().parse_args([*command, "--seed", "7"]))
    assert changed.seed == 7


def test_faces_batch_and_margin_options_reach_the_settings() -> None:
    from cnnlab.cli import build_parser
    from cnnlab.cli.common import config_from_args
    from cnnlab.engine.faces import FacesConfig

    argv = ["faces", "train", "--alpha", "0.3", "--p", "8", "--images-per-identity", "2"]
    argv += ["--synthetic", "none", "--synthetic-identities", "50"]
    config = config_from_args(FacesConfig, build_parser().parse_args(argv))
    assert (config.alpha, config.p, config.k) == (0.3, 8, 2)
    assert (config.synthetic, config.synthetic_identities) == ("none", 50)


@pytest.mark.parametrize(
    ("command", "model", "needs"),
    [
        (["classify", "predict"], "siamese", "classification"),
        (["classify", "eval"], "yolo", "classification"),
        (["localize", "eval"], "lenet5", "localization"),
        (["localize", "predict"], "siamese", "localization"),
        (["detect", "eval"], "localizer", "detection"),
        (["detect", "predict"], "unet", "detection"),
        (["segment", "eval"], "yolo", "segmentation"),
        (["segment", "predict"], "lenet5", "segmentation"),
        (["explain", "sliding-windows"], "siamese", "classification"),
        (["faces", "enroll", "--name", "ada", "ada.png"], "lenet5", "embedding"),
    ],
)
def test_a_checkpoint_of_another_task_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    model: str,
    needs: str,
) -> None:
    """A face encoder given to ``classify predict`` (and so on) is named in one line, exit 2,
    instead of a KeyError on a field only the right task's checkpoints have."""
    from cnnlab.engine.checkpoint import TRAINED_BY, save_checkpoint
    from cnnlab.registry import create_model, get_model_entry

    path = save_checkpoint(
        tmp_path / f"{model}.pt",
        {"model": model, "model_kwargs": {}, "state_dict": create_model(model).state_dict()},
    )
    assert main([*command, "--checkpoint", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    made = get_model_entry(model).task
    a = {"embedding": "an embedding"}  # every other task here takes "a"
    assert err.splitlines() == [
        f"cnnlab: error: {path}: {a.get(made, 'a ' + made)} checkpoint (model {model!r}), "
        f"not {a.get(needs, 'a ' + needs)} one; make one with {TRAINED_BY[needs]}"
    ]
    assert TRAINED_BY[needs].split()[1] in ("classify", command[0])


def _commands(parser, path: tuple[str, ...] = ("cnnlab",)):
    """Every (command path, parser) pair below ``parser``."""
    import argparse

    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


def test_every_option_is_explained_with_its_default() -> None:
    """``--help`` of every command says what each option and sub-command does; a real default
    is shown."""
    import argparse
    import re

    from cnnlab.cli import build_parser

    commands = list(_commands(build_parser()))
    assert len(commands) > 40
    silent = []
    for path, parser in commands:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):  # each choice says what it does
                silent += [
                    f"{' '.join(path)} {c.dest}" for c in action._choices_actions if not c.help
                ]
            elif not action.help:
                silent.append(f"{' '.join(path)} {action.option_strings or action.dest}")
    assert silent == []
    for path, parser in commands:  # every --help renders, with no empty default shown
        text = " ".join(parser.format_help().split())
        assert not re.search(r"\(default: (\)|True|\(|\[)", text), " ".join(path)
    usage = " ".join(dict(commands)[("cnnlab", "detect", "predict")].format_help().split())
    assert "(default: 0.3)" in usage and "(default: runs/detect/predictions.png)" in usage
    assert "(default: None)" not in usage and "(default: False)" not in usage
    degradation = " ".join(
        dict(commands)[("cnnlab", "explain", "degradation")].format_help().split()
    )
    assert "(default: 20,56)" in degradation  # as it is typed
    mirror = " ".join(dict(commands)[("cnnlab", "detect", "train")].format_help().split())
    assert "left and right differ (arrows, text) (default: on)" in mirror  # a switch's


def test_json_line_is_valid_json_whatever_the_numbers() -> None:
    """NaN and infinity become null (json.dumps would write NaN, which JSON lacks); NumPy
    scalars become numbers, not strings."""
    import numpy as np

    from cnnlab.cli import json_safe

    result = {"a": float("nan"), "b": [1.0, float("inf")], "c": np.float32(0.5)}
    result["d"] = (np.int64(3),)
    line = json.dumps(json_safe(result), allow_nan=False)
    assert json.loads(line) == {"a": None, "b": [1.0, None], "c": 0.5, "d": [3]}


def test_receptive_field_at_another_input_size(capsys: pytest.CaptureFixture[str]) -> None:
    """``explain receptive-field MODEL --input CxHxW`` ended in a traceback (its --input, a
    size, was parsed again as a matrix); the fields do not depend on the size, the maps do; a
    size the model cannot take (LeNet-5's head is made for 32 px) is one line."""
    argv = ["explain", "receptive-field", "unet", "--json"]
    assert main(argv) == 0
    default = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["layers"]
    assert main([*argv, "--input", "3x48x48"]) == 0
    at_48 = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["layers"]
    assert [r["receptive_field"] for r in at_48] == [r["receptive_field"] for r in default]
    assert at_48[0]["output_size"] == 48 != default[0]["output_size"]
    assert main(["explain", "receptive-field", "lenet5", "--input", "1x64x64"]) == 2
    err = capsys.readouterr().err
    assert "1x64x64 inputs do not fit lenet5 (made for 1x32x32; another --input?)" in err


@pytest.mark.parametrize("where", ["before", "after"])
def test_json_before_or_after_the_command(capsys: pytest.CaptureFixture[str], where: str) -> None:
    """``cnnlab --json explain iou ...`` (the form the top-level usage shows) used to print the
    human view only: the command's own --json default overwrote the one given before it."""
    argv = ["explain", "iou", "--a", "0 0 4 4", "--b", "2 2 6 6"]
    assert main(["--json", *argv] if where == "before" else [*argv, "--json"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["union"] == 28
    assert main(argv) == 0  # and without it, the human view
    assert "IoU = 4 / 28" in capsys.readouterr().out


def test_a_detector_whose_last_map_is_1x1_trains(tmp_path: Path) -> None:
    """yolo on ResNet-18 at 32 px: the grid was probed with one image in training mode, which
    batch norm refuses at a 1x1 map (a ValueError traceback before any training)."""
    argv = ["detect", "train", "--backbone", "resnet18", "--image-size", "32", "--images", "20"]
    assert main([*argv, "--epochs", "1", "--out", str(tmp_path / "run")]) == 0


def test_help_and_option_errors_answer_without_importing_torch() -> None:
    """Building the parser imported torch (through the model registry, the task settings and
    the export module): ``cnnlab --help`` or a mistyped value waited 2.6 s here; now 0.3 s. Every
    option and its default come from torch-free modules (cnnlab.config, cnnlab.registry)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from cnnlab.cli import build_parser, main\n"
        "build_parser()\n"
        "assert main(['detect', 'train', '--epochs', '0']) == 2\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "--epochs: must be >= 1, got 0" in done.stderr


def test_counts_are_said_in_their_number() -> None:
    """Messages said "1 image(s)"; now "1 image", "1,797 images", "2 identities"."""
    from cnnlab.words import counted

    assert counted(1, "image") == "1 image"
    assert counted(0, "image") == "0 images"
    assert counted(1797, "image") == "1,797 images"
    assert counted(2, "identity", "identities") == "2 identities"
    from cnnlab.cli.localize import _localization_line

    one = {"accuracy": 1.0, "iou_correct": 1.0, "mean_iou": 0.9, "count": 1}
    assert _localization_line(one).endswith("mean IoU 0.900 on 1 image")  # was "on 1 images"


def test_a_suggestion_is_made_only_for_a_near_name() -> None:
    """A suggestion answers a slip, not any word: `--data nonexist` was asked "did you mean
    mnist?" (difflib's default cutoff, 0.6, matched them at 0.62)."""
    from cnnlab.words import nearest

    datasets = ["digits", "faces", "mnist", "fashion-mnist", "cifar10", "cifar100"]
    assert nearest("nonexist", datasets) == ""
    assert nearest("mnsit", datasets) == "; did you mean mnist?"
    assert nearest("cifar", datasets, n=2) == "; did you mean cifar10, cifar100?"
    assert nearest("evaluate", ["train", "eval", "predict"]) == "; did you mean eval?"


def test_help_returns_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """`--help` returns 0 from main() (argparse's sys.exit was a SystemExit in a notebook)."""
    assert main(["--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: cnnlab ")
    assert main(["faces", "train", "--help"]) == 0
    assert "--members" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`cnnlab --version`: cnnlab's version (the package's metadata) and torch's, as a line or,
    with --json, as one JSON object; no command needed, exit code 0."""
    import platform
    from importlib.metadata import version

    assert main(["--version"]) == 0
    said = capsys.readouterr().out.strip()
    assert said == (
        f"cnnlab {version('cnnlab')} (torch {version('torch')}, Python {platform.python_version()})"
    )
    assert main(["--json", "--version"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {
        "cnnlab": version("cnnlab"),
        "torch": version("torch"),
        "python": platform.python_version(),
    }


def test_a_missing_checkpoint_names_the_newest_run_of_the_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A command that needs --checkpoint and got none shows the newest best.pt of its own
    task under runs/ (none where there are no runs); classify predict's --onnx too."""
    import os

    monkeypatch.chdir(tmp_path)
    err = run_error(capsys, "detect", "predict")
    assert err.endswith(
        "give --checkpoint (a run's best.pt) or --onnx (a file cnnlab export wrote)"
    )
    for age, run in ((100, "detect/run"), (10, "detect/run-2"), (1, "segment/run")):
        best = tmp_path / "runs" / run / "best.pt"
        best.parent.mkdir(parents=True)
        best.write_bytes(b"")
        os.utime(best, (1e9 - age, 1e9 - age))
    err = run_error(capsys, "detect", "predict")
    assert err.endswith(
        f"(a run's best.pt, e.g. {Path('runs/detect/run-2/best.pt')}, the newest run here) or "
        "--onnx (a file cnnlab export wrote)"
    )
    assert "runs/segment" not in err.replace("\\", "/")
    err = run_error(capsys, "classify", "predict", "a.png")
    assert err == (
        "cnnlab: error: give --checkpoint (a run's best.pt) or --onnx (a file cnnlab export wrote)"
    )
    err = run_error(capsys, "classify", "predict", "--checkpoint", "a.pt", "--onnx", "a.onnx")
    assert err == "cnnlab: error: give --checkpoint or --onnx, not both"
    # a positional argument missing: what it is, from its help
    assert run_error(capsys, "summary").endswith(
        "required: model (model: a registered model, see cnnlab models)"
    )
    assert run_error(capsys, "data", "download").endswith(
        "(name: one of mnist, fashion-mnist, "
        "cifar10, cifar100, pets, voc2007, voc2012, coco, coco-train2017)"
    )
    assert run_error(capsys, "data", "check", "--data", "x").endswith(  # its choices too
        "(task: whose training reads it, one of classify, detect, localize, segment, faces)"
    )
    # a checkpoint, an image or a folder given without its option: where it goes
    hint = "; to use best.pt, put --checkpoint before it"
    for argv in (
        ("classify", "eval", "best.pt"),  # argparse: --checkpoint missing
        ("classify", "eval", "--json", "best.pt"),  # after a flag, still without its option
        ("classify", "predict", "best.pt", "a.png"),  # taken for an image
        ("faces", "verify", "--name", "ann", "best.pt"),
    ):
        assert run_error(capsys, *argv).endswith(hint), argv
    (tmp_path / "photo.png").write_bytes(b"")
    (tmp_path / "photos").mkdir()
    for argv, option in (
        (("visualize", "filters", "best.pt"), "--checkpoint"),  # an unrecognized argument
        (("classify", "train", "photos"), "--data"),
    ):
        assert run_error(capsys, *argv).endswith(f" (put {option} before it)"), argv
    assert run_error(capsys, "data", "check", "classify", "photos").endswith(  # --data missing
        "required: --data; to use photos, put --data before it"
    )
    (tmp_path / "classify").mkdir()  # the task's name, not a folder to check
    # not where the word is an option's value, or names nothing there, or the command takes
    # no such option (a folder for edges apply, an image for classify train)
    for argv in (
        ("classify", "eval", "--split", "best.pt"),
        ("summary", "lenet5", "best.pt"),
        ("edges", "apply", "nothere.png"),
        ("edges", "apply", "photos"),
        ("classify", "train", "photo.png"),
        ("data", "check", "classify"),
        ("data", "check", "classify", "nothere"),
    ):
        assert "before it" not in run_error(capsys, *argv), argv


@pytest.mark.parametrize(
    ("command", "settings"),
    [
        ("classify train", "ClassifyTrainConfig"),
        ("localize train", "LocalizeConfig"),
        ("detect train", "DetectConfig"),
        ("segment train", "SegmentConfig"),
        ("faces train", "FacesConfig"),
    ],
)
def test_every_training_setting_is_an_option_of_its_command(command: str, settings: str) -> None:
    """Each field of a train command's settings dataclass can be given on the command line, and
    the option left out means the dataclass default (detect and localize could not turn their
    mirroring off, faces could not set CosFace's scale s)."""
    import argparse
    from dataclasses import fields

    import cnnlab.config
    from cnnlab.cli import build_parser
    from cnnlab.cli.common import config_from_args

    cls = getattr(cnnlab.config, settings)
    parser = build_parser()
    for word in command.split():
        parser = next(
            a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
        ).choices[word]
    options = {a.dest: a for a in parser._actions}
    assert [f.name for f in fields(cls) if f.name not in options] == []
    assert config_from_args(cls, parser.parse_args([])) == cls()
    for f in fields(cls):
        if isinstance(f.default, bool):  # a switch flips its field
            flag = f"--{'no-' if f.default else ''}{f.name.replace('_', '-')}"
            try:
                flipped = config_from_args(cls, parser.parse_args([flag]))
            except CnnlabError as exc:  # refused alone (--cache-features needs --freeze)
                assert flag in str(exc)
                continue
            assert getattr(flipped, f.name) is not f.default, flag


def test_prediction_tables_show_files_within_the_folder_they_share() -> None:
    """At 80 columns rich broke "photos/grass/038.jpg" before its "g"; files that share a folder
    are now shown by their names under it, the folder heading the column. Sources that are not
    paths, or share no folder, stay whole paths under "source"."""
    import io
    import os

    from rich.console import Console
    from rich.table import Table

    from cnnlab.cli.predicting import add_source_column

    def shown(sources: list[str]) -> tuple[str, list[str]]:
        table = Table()
        names = add_source_column(table, sources)
        return str(table.columns[0].header), names

    grass = [os.path.join("photos", "grass", f"{i:03d}.jpg") for i in range(3)]
    assert shown(grass) == (os.path.join("photos", "grass", ""), ["000.jpg", "001.jpg", "002.jpg"])
    brick = os.path.join("photos", "brick", "000.jpg")
    assert shown([*grass[:1], brick]) == (
        os.path.join("photos", ""),
        [os.path.join("grass", "000.jpg"), os.path.join("brick", "000.jpg")],
    )
    assert shown(["test[0]", "test[1]"]) == ("source", ["test[0]", "test[1]"])
    assert shown([grass[0], "a.png"]) == ("source", [grass[0], "a.png"])
    assert shown([grass[0], os.path.abspath(brick)]) == (
        "source",
        [grass[0], os.path.abspath(brick)],
    )
    # drawn at 80 columns beside four more columns, every name stays on one line
    table = Table()
    names = add_source_column(
        table, [os.path.join("photos", "grass", f"{i:03d}.jpg") for i in range(40)]
    )
    for col in ("prediction", "probability", "label", "next 2"):
        table.add_column(col, overflow="fold")
    for name in names:
        table.add_row(name, "gravel", "0.703", "grass", "grass 0.297, brick 0.000")
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(table)
    text = console.export_text()
    assert all(name in text for name in names) and max(map(len, text.splitlines())) <= 80


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (
            ["conv", "--input", "1 2 3;4 5 6;7 8 9", "--filter", "vertical", "--n", "6"],
            "explain conv: --n describes a layer's shapes, without --input",
        ),
        (
            ["conv", "--input", "1 2;3 4", "--filter", "1 0;0 1", "--f", "5", "--filters", "2"],
            "explain conv: --f and --filters describe a layer's shapes, without --input; with "
            "--input the matrices give the sizes",
        ),
        (["pool", "--input", "1 3;2 9", "--channels", "3"], "explain pool: --channels describes"),
        (["transpose", "--input", "1 2;3 4", "--filter", "1 4 1;1 4 3;3 3 1", "--f", "3"], "--f"),
        (
            ["conv", "--n", "6", "--f", "3", "--filter", "sobel"],
            "explain conv: --filter is a matrix to convolve --input with; without --input give "
            "--n and --f for the shapes",
        ),
    ],
)
def test_explain_refuses_options_of_the_other_mode(
    capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    """explain conv, pool and transpose compute on matrices or explain a layer's shapes; an
    option of the other mode (--n 6 beside a 3x3 --input) was ignored without a word. Pooling's
    --f, its window, works in both."""
    assert main(["explain", *argv]) == 2
    assert said in capsys.readouterr().err
    assert main(["explain", "pool", "--input", "1 3 2 1;2 9 1 1;1 3 2 3;5 6 1 2", "--f", "2"]) == 0


def test_options_that_choose_images_are_refused_beside_image_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--split and --limit (classify predict), --scenes and --seed (detect, localize and
    segment predict) and --data, --split, --limit and --index (visualize occlusion) choose the
    images used when none are given; typed beside image files they were ignored without a word.
    Refused before any checkpoint is read."""
    from PIL import Image

    photo = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(photo)
    cases = [
        (["classify", "predict", str(photo), "--split", "val"], "--split chooses the run's own"),
        (
            ["classify", "predict", str(photo), "--split=val", "--limit", "3"],
            "--split and --limit choose the run's own images to predict on when no image files "
            "are given; with image files, drop them",
        ),
        (["detect", "predict", str(photo), "--scenes", "5"], "--scenes chooses the new scenes"),
        (["localize", "predict", str(photo), "--seed", "1"], "--seed chooses the new scenes"),
        (["segment", "predict", str(photo), "--scenes", "2", "--seed", "1"], "--scenes and --seed"),
        (
            ["visualize", "occlusion", "--image", str(photo), "--split", "val", "--index", "2"],
            "--split and --index choose the data's images to occlude",
        ),
    ]
    for argv, said in cases:
        assert main([*argv, "--checkpoint", str(tmp_path / "missing.pt")]) == 2
        assert said in capsys.readouterr().err, argv


def test_a_switched_off_progress_bar_prints_nothing() -> None:
    """rich before release 15 printed an empty line when a switched-off bar stopped: a blank line
    on stderr after every ``--json`` run (``make test-oldest`` runs this on rich 13.0)."""
    from rich.console import Console

    from cnnlab.progress import ProgressBar

    out = io.StringIO()
    with ProgressBar(console=Console(file=out), disable=True) as bar:
        bar.advance(bar.add_task("reading", total=2))
    assert out.getvalue() == ""
    with ProgressBar(console=Console(file=out)) as bar:  # switched on, the same console writes
        bar.advance(bar.add_task("reading", total=2))
    assert "reading" in out.getvalue()


def test_messages_take_the_article_of_the_words_sound() -> None:
    from cnnlab.words import with_article

    said = [with_article(w) for w in ("detection", "embedding", "uint16", "int64", "object")]
    assert said == ["a detection", "an embedding", "a uint16", "an int64", "an object"]
    shapes = [with_article(w) for w in ("8x8x2", "80x3", "11x5", "18x2", "110x5", "3x9x9")]
    assert shapes == ["an 8x8x2", "an 80x3", "an 11x5", "an 18x2", "a 110x5", "a 3x9x9"]
