"""`cnnlab data`: the real download path against a server this test runs on 127.0.0.1, and the
format readers on small files written in each real format."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import struct
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import main
from cnnlab.data import download as D
from cnnlab.errors import CnnlabError


class Files:
    """What the test server serves, and how it misbehaves."""

    def __init__(self) -> None:
        self.content: dict[str, bytes] = {}
        self.cut_once: set[str] = set()
        self.fail: set[str] = set()
        self.ranges: list[str] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Files]]:
    files = Files()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            name = self.path.rsplit("/", 1)[-1]
            if name in files.fail or name not in files.content:
                self.send_error(500 if name in files.fail else 404)
                return
            body, start = files.content[name], 0
            if rng := self.headers.get("Range"):
                files.ranges.append(rng)
                start = int(rng.split("=")[1].split("-")[0])
                self.send_response(206)
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            if name in files.cut_once:
                files.cut_once.discard(name)
                self.wfile.write(body[start : start + (len(body) - start) // 2])
                return  # the connection closes with half the bytes sent
            self.wfile.write(body[start:])

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/files", files
    httpd.shutdown()
    httpd.server_close()  # the listening socket, or each test leaves one open


def serve(
    files: Files,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    archives: dict[str, bytes],
    bad_md5: bool = False,
    size_error: int = 0,
    checksums: bool = True,
) -> None:
    """Serve ``archives`` and make dataset ``name`` point at them with their real checksums and
    sizes (off by ``size_error`` bytes when asked)."""
    files.content.update(archives)
    spec = D.DATASETS[name]
    remote = tuple(
        D.RemoteFile(
            f"https://example.invalid/{fname}",
            ("0" * 32 if bad_md5 else hashlib.md5(data).hexdigest()) if checksums else None,
            len(data) + size_error,
            next((f.unpack for f in spec.files if f.url.endswith(fname)), "auto"),
        )
        for fname, data in archives.items()
    )
    monkeypatch.setitem(D.DATASETS, name, D.DatasetSpec(name, remote, spec.licence, spec.task))


def idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return gzip.compress(header + arr.astype(np.uint8).tobytes())


def mnist_files(n_train: int = 60, n_test: int = 20) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 30, (n, 28, 28))
        for i, lab in enumerate(labels):  # a bright bar whose position encodes the label
            images[i, 2 + 2 * lab : 4 + 2 * lab, 4:24] = 250
        out[f"{prefix}-images-idx3-ubyte.gz"] = idx_bytes(images)
        out[f"{prefix}-labels-idx1-ubyte.gz"] = idx_bytes(labels)
    return out


def tar_bytes(members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def png_bytes(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def test_download_mnist_then_train(
    server, monkeypatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, files = server
    serve(files, monkeypatch, "mnist", mnist_files())
    root = str(tmp_path / "data")
    assert main(["classify", "train", "--data", "mnist", "--data-root", root]) == 2
    assert "cnnlab data download mnist" in capsys.readouterr().err  # nothing fetched here
    assert main(["data", "download", "mnist", "--root", root, "--mirror", url, "--json"]) == 0
    assert D.is_present("mnist", root)
    assert main(["data", "list", "--root", root, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["datasets"]
    assert next(d for d in listed if d["name"] == "mnist")["present"] is True
    assert (
        main(
            [
                "classify",
                "train",
                "--data",
                "mnist",
                "--data-root",
                root,
                "--epochs",
                "1",
                "--batch-size",
                "16",
                "--out",
                str(tmp_path / "run"),
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["test_count"] == 20


def test_a_local_folder_as_mirror(
    monkeypatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--mirror may be a folder holding the archives (a copy carried to an offline machine), and
    a --mirror that is neither a URL nor a folder is a one-line error, not urllib's traceback."""
    files = Files()
    archives = mnist_files()
    serve(files, monkeypatch, "mnist", archives)
    folder = tmp_path / "archives"
    folder.mkdir()
    root = str(tmp_path / "data")
    argv = ["data", "download", "mnist", "--root", root, "--mirror"]
    assert main([*argv, str(folder)]) == 2  # an empty folder: the first archive is missing
    assert "no such file in the mirror folder" in capsys.readouterr().err
    for name, data in archives.items():
        (folder / name).write_bytes(data)
    assert main([*argv, str(folder), "--json"]) == 0
    assert D.is_present("mnist", root)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["path"].endswith("mnist")
    for mirror, message in (
        ("archives", "neither an http(s):// or file:// URL nor an existing folder"),
        ("http://[::1", "not a valid URL"),
        ("http://", "neither an http(s)://"),
    ):
        assert main(["data", "download", "fashion-mnist", "--root", root, "--mirror", mirror]) == 2
        assert message in capsys.readouterr().err


def test_a_second_download_of_the_same_set_is_refused_meanwhile(
    server, monkeypatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two downloads of one dataset into one root used to append to the same .part files; the
    second is refused while the first holds the lock, and goes ahead once it ends."""
    fcntl = pytest.importorskip("fcntl")
    url, files = server
    serve(files, monkeypatch, "mnist", mnist_files())
    root = tmp_path / "data"
    root.mkdir()
    argv = ["data", "download", "mnist", "--root", str(root), "--mirror", url]
    with (root / ".mnist.lock").open("w") as held:  # what a download under way holds
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(argv) == 2
        assert (
            f"mnist: another `cnnlab data download mnist` is under way into {root}"
            in capsys.readouterr().err
        )
        assert main(["data", "download", "fashion-mnist", "--root", str(root), "--json"]) == 2
        assert "another" not in capsys.readouterr().err  # other sets are not held up
    assert main(argv) == 0 and D.is_present("mnist", root)


@pytest.mark.parametrize(
    "fault, message",
    [
        ({"bad_md5": True}, "checksum mismatch"),
        ({"size_error": 5}, "size mismatch"),
        ({"size_error": -5}, "size mismatch"),
    ],
)
def test_a_wrong_file_is_deleted(
    server,
    monkeypatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fault: dict[str, object],
    message: str,
) -> None:
    url, files = server
    serve(files, monkeypatch, "mnist", mnist_files(), **fault)
    root = tmp_path / "data"
    assert main(["data", "download", "mnist", "--root", str(root), "--mirror", url]) == 2
    assert message in capsys.readouterr().err
    assert not list((root / ".downloads").glob("*")) and not D.is_present("mnist", root)


def test_the_table_has_exact_sizes_and_checksums() -> None:
    for spec in D.DATASETS.values():
        for f in spec.files:
            assert f.url.startswith(("https://", "http://")) and f.size and f.size > 1000
            if "cocodataset.org" not in f.url:  # COCO publishes no checksums
                assert f.md5 is not None and len(f.md5) == 32
    assert D.DATASETS["cifar10"].size == "170 MB"
    assert D.DATASETS["coco-train2017"].size == "19.6 GB"


def test_cut_transfer_resumes(
    server, monkeypatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, files = server
    archives = mnist_files()
    serve(files, monkeypatch, "mnist", archives)
    files.cut_once.add("train-images-idx3-ubyte.gz")
    root = str(tmp_path / "data")
    assert main(["data", "download", "mnist", "--root", root, "--mirror", url]) == 2
    assert "run the same command again to resume" in capsys.readouterr().err
    assert main(["data", "download", "mnist", "--root", root, "--mirror", url]) == 0
    half = len(archives["train-images-idx3-ubyte.gz"]) // 2
    assert files.ranges == [f"bytes={half}-"]  # the second request continued, not restarted
    assert D.is_present("mnist", root)


def test_server_error_and_escaping_archive(
    server, monkeypatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, files = server
    serve(files, monkeypatch, "mnist", mnist_files())
    files.fail.add("t10k-images-idx3-ubyte.gz")
    assert main(["data", "download", "mnist", "--root", str(tmp_path / "a"), "--mirror", url]) == 2
    assert "server answered 500" in capsys.readouterr().err
    evil = tar_bytes({"cifar-10-batches-bin/ok.bin": b"x", "../evil.txt": b"pwned"})
    serve(files, monkeypatch, "cifar10", {"cifar-10-binary.tar.gz": evil})
    assert (
        main(["data", "download", "cifar10", "--root", str(tmp_path / "b"), "--mirror", url]) == 2
    )
    assert "would escape the target folder" in capsys.readouterr().err
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "b" / "evil.txt").exists()


def cifar_record(label: int, rng: np.random.Generator, extra: int = 0) -> bytes:
    return bytes([label] * (1 + extra)) + rng.integers(0, 255, 3072).astype(np.uint8).tobytes()


def test_cifar_binary_parser(
    server, monkeypatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, files = server
    rng = np.random.default_rng(1)
    members = {
        f"cifar-10-batches-bin/data_batch_{i}.bin": b"".join(
            cifar_record(k % 10, rng) for k in range(10)
        )
        for i in range(1, 6)
    }
    members["cifar-10-batches-bin/test_batch.bin"] = b"".join(
        cifar_record(k % 10, rng) for k in range(10)
    )
    members["cifar-10-batches-bin/batches.meta.txt"] = "\n".join(
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    ).encode()
    serve(files, monkeypatch, "cifar10", {"cifar-10-binary.tar.gz": tar_bytes(members)})
    root = str(tmp_path / "data")
    assert main(["data", "download", "cifar10", "--root", root, "--mirror", url]) == 0
    from cnnlab.data.standard import load_standard_classification

    data = load_standard_classification("cifar10", root)
    assert data.channels == 3 and data.class_names[0] == "airplane"
    assert sum(len(s) for s in data.splits.values()) == 60
    assert (
        main(
            [
                "classify",
                "train",
                "--data",
                "cifar10",
                "--data-root",
                root,
                "--model",
                "cifar_resnet20",
                "--epochs",
                "1",
                "--batch-size",
                "10",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )


def test_cifar100_reads_the_fine_label(server, monkeypatch, tmp_path: Path) -> None:
    """CIFAR-100 records carry two label bytes (coarse, fine); the classes are the fine ones."""
    url, files = server
    rng = np.random.default_rng(4)

    def records(n: int) -> bytes:  # coarse label 99 - fine, so reading the wrong byte shows
        return b"".join(
            bytes([19 - k % 20, k % 20]) + rng.integers(0, 255, 3072).astype(np.uint8).tobytes()
            for k in range(n)
        )

    fine = [f"class_{i}" for i in range(100)]
    members = {
        "cifar-100-binary/train.bin": records(40),
        "cifar-100-binary/test.bin": records(20),
        "cifar-100-binary/fine_label_names.txt": "\n".join(fine).encode(),
        "cifar-100-binary/coarse_label_names.txt": b"a\nb\n",
    }
    serve(files, monkeypatch, "cifar100", {"cifar-100-binary.tar.gz": tar_bytes(members)})
    root = str(tmp_path / "data")
    assert main(["data", "download", "cifar100", "--root", root, "--mirror", url]) == 0
    from cnnlab.data.standard import load_standard_classification

    data = load_standard_classification("cifar100", root)
    assert data.class_names == fine and data.channels == 3
    assert sorted(data.splits["test"].labels.tolist()) == sorted(k % 20 for k in range(20))
    assert sum(len(s) for s in data.splits.values()) == 60
    (Path(root) / "cifar100" / "cifar-100-binary" / "test.bin").write_bytes(b"x" * 3075)
    with pytest.raises(CnnlabError, match=r"test\.bin: size 3075 is not a whole number of 3074"):
        load_standard_classification("cifar100", root)


def test_voc_segmentation_keeps_void_out(server, monkeypatch, tmp_path: Path) -> None:
    """VOC masks are palette PNGs of class indices; 255 (the object borders) stays "void", which
    training and scoring leave out, and an RGB-coloured mask is refused, naming the file."""
    url, files = server
    rng = np.random.default_rng(5)
    members = {}
    mask = np.zeros((48, 64), np.uint8)
    mask[10:30, 20:40] = 15  # person
    mask[10, 20:40] = 255
    for i in range(6):
        stem = f"2012_{i:06d}"
        members[f"VOCdevkit/VOC2012/JPEGImages/{stem}.jpg"] = png_bytes(
            rng.integers(0, 255, (48, 64, 3)).astype(np.uint8), "JPEG"
        )
        png = Image.fromarray(mask, mode="P")
        png.putpalette([0, 0, 0] * 21 + [224, 224, 192] * 235)
        buf = io.BytesIO()
        png.save(buf, format="PNG")
        members[f"VOCdevkit/VOC2012/SegmentationClass/{stem}.png"] = buf.getvalue()
    sets = "VOCdevkit/VOC2012/ImageSets/Segmentation"
    members[f"{sets}/train.txt"] = b"".join(f"2012_{i:06d}\n".encode() for i in (0, 2, 4, 5))
    members[f"{sets}/val.txt"] = b"2012_000001\n2012_000003\n"
    serve(files, monkeypatch, "voc2012", {"VOCtrainval_11-May-2012.tar": tar_bytes(members, "w")})
    root = str(tmp_path / "data")
    assert main(["data", "download", "voc2012", "--root", root, "--mirror", url]) == 0
    from cnnlab.data.standard import voc_segmentation

    seg = voc_segmentation("voc2012", root, 64)
    assert seg.class_names[0] == "background" and seg.class_names[15] == "person"
    assert seg.images.shape == (6, 3, 64, 64) and seg.masks.shape == (6, 64, 64)
    assert seg.masks[0, 25, 30] == 15 and seg.masks[0, 0, 0] == 0
    assert set(seg.masks.unique().tolist()) == {0, 15, 255}  # the border stays void
    assert {k: v.tolist() for k, v in seg.splits.items()} == {"train": [0, 2, 4, 5], "val": [1, 3]}
    assert (
        main(
            [
                "segment",
                "train",
                "--data",
                "voc2012",
                "--data-root",
                root,
                "--image-size",
                "32",
                "--epochs",
                "1",
                "--out",
                str(tmp_path / "seg"),
            ]
        )
        == 0
    )
    bad = Path(root) / "voc2012" / "VOCdevkit" / "VOC2012" / "SegmentationClass" / "2012_000003.png"
    Image.fromarray(np.full((48, 64, 3), (10, 200, 30), np.uint8)).save(bad)  # no VOC colour
    with pytest.raises(CnnlabError, match=r"2012_000003\.png: a colour image, not in the colours"):
        voc_segmentation("voc2012", root, 64)


VOC_XML = """<annotation><size><width>64</width><height>48</height><depth>3</depth></size>
<object><name>{name}</name><bndbox><xmin>{x1}</xmin><ymin>5</ymin><xmax>{x2}</xmax>
<ymax>40</ymax></bndbox></object></annotation>"""


def test_voc_and_pets_feed_detection_and_segmentation(
    server, monkeypatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, files = server
    rng = np.random.default_rng(2)
    voc = {}
    for i in range(8):
        stem = f"{i:06d}"
        voc[f"VOCdevkit/VOC2007/Annotations/{stem}.xml"] = VOC_XML.format(
            name=("car", "person")[i % 2], x1=3 + i, x2=30 + i
        ).encode()
        voc[f"VOCdevkit/VOC2007/JPEGImages/{stem}.jpg"] = png_bytes(
            rng.integers(0, 255, (48, 64, 3)).astype(np.uint8), "JPEG"
        )
    voc["VOCdevkit/VOC2007/Annotations/000001.xml"] = (
        VOC_XML.replace(
            "</annotation>",
            "<object><name>dog</name><difficult>1</difficult><bndbox><xmin>40</xmin><ymin>5</ymin>"
            "<xmax>60</xmax><ymax>20</ymax></bndbox></object></annotation>",
        )
        .format(name="person", x1=4, x2=31)
        .encode()
    )
    main_sets = "VOCdevkit/VOC2007/ImageSets/Main"
    voc[f"{main_sets}/train.txt"] = b"000000\n000001\n000002\n000003\n"
    voc[f"{main_sets}/val.txt"] = b"000004\n000005\n"
    test_list = {f"{main_sets}/test.txt": b"000006\n000007\n"}  # VOC 2007's test tar has it
    serve(
        files,
        monkeypatch,
        "voc2007",
        {
            "VOCtrainval_06-Nov-2007.tar": tar_bytes(voc, "w"),
            "VOCtest_06-Nov-2007.tar": tar_bytes(test_list, "w"),
        },
    )
    root = str(tmp_path / "data")
    assert main(["data", "download", "voc2007", "--root", root, "--mirror", url]) == 0
    from cnnlab.data.standard import VOC_CLASSES, voc_detection

    det = voc_detection("voc2007", root, 64)
    assert det.labels[0].tolist() == [VOC_CLASSES.index("car")]
    assert np.allclose(det.boxes[0].numpy(), [[2 / 64, 4 / 48, 30 / 64, 40 / 48]])
    assert det.difficult[1].tolist() == [False, True] and det.labels[1].tolist() == [14, 11]
    assert [t.tolist() for t in det.trained_on(1)[1:]] == [[14]]  # the difficult dog: not taught
    assert {k: v.tolist() for k, v in det.splits.items()} == {
        "train": [0, 1, 2, 3],
        "val": [4, 5],
        "test": [6, 7],
    }
    assert (
        main(
            [
                "detect",
                "train",
                "--data",
                "voc2007",
                "--data-root",
                root,
                "--image-size",
                "64",
                "--epochs",
                "1",
                "--anchors",
                "2",
                "--out",
                str(tmp_path / "det"),
            ]
        )
        == 0
    )
    images = {
        f"images/pet{i}.jpg": png_bytes(rng.integers(0, 255, (40, 40, 3)).astype(np.uint8), "JPEG")
        for i in range(8)
    }
    trimap = np.full((40, 40), 2, np.uint8)
    trimap[10:30, 10:30] = 1
    trimap[10, 10:30] = 3
    annotations = {f"annotations/trimaps/pet{i}.png": png_bytes(trimap) for i in range(8)}
    # the dataset's lists: "<image> <class id> <species> <breed id>" per line
    annotations["annotations/trainval.txt"] = b"".join(f"pet{i} 1 1 1\n".encode() for i in range(6))
    annotations["annotations/test.txt"] = b"pet6 1 1 1\npet7 1 1 1\n"
    serve(
        files,
        monkeypatch,
        "pets",
        {"images.tar.gz": tar_bytes(images), "annotations.tar.gz": tar_bytes(annotations)},
    )
    assert main(["data", "download", "pets", "--root", root, "--mirror", url]) == 0
    from cnnlab.data.standard import pets_segmentation

    seg = pets_segmentation(root, 40)
    assert seg.class_names == ["background", "pet", "border"]
    assert seg.masks[0, 20, 20] == 1 and seg.masks[0, 0, 0] == 0 and seg.masks[0, 10, 15] == 2
    assert seg.splits["test"].tolist() == [6, 7] and len(seg.splits["val"]) == 1
    assert sorted(seg.splits["train"].tolist() + seg.splits["val"].tolist()) == list(range(6))
    assert (
        main(
            [
                "segment",
                "train",
                "--data",
                "pets",
                "--data-root",
                root,
                "--image-size",
                "40",
                "--epochs",
                "1",
                "--out",
                str(tmp_path / "seg"),
            ]
        )
        == 0
    )


@pytest.mark.parametrize("name, split", [("coco", "val2017"), ("coco-train2017", "train2017")])
def test_coco_without_checksums(server, monkeypatch, tmp_path: Path, name: str, split: str) -> None:
    import zipfile

    url, files = server
    rng = np.random.default_rng(3)
    images, anns = [], []
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        for i in range(6):
            z.writestr(
                f"{split}/{i:012d}.jpg",
                png_bytes(rng.integers(0, 255, (40, 50, 3)).astype(np.uint8), "JPEG"),
            )
            images.append({"id": i + 1, "file_name": f"{i:012d}.jpg", "width": 50, "height": 40})
            anns.append(
                {
                    "id": i + 1,
                    "image_id": i + 1,
                    "category_id": (18, 3)[i % 2],
                    "bbox": [5, 5, 20, 25],
                    "area": 500,
                    "iscrowd": 0,
                }
            )
    coco = {
        "images": images,
        "annotations": anns,
        "categories": [{"id": 3, "name": "car"}, {"id": 18, "name": "dog"}],
    }
    abuf = io.BytesIO()
    with zipfile.ZipFile(abuf, "w") as z:
        z.writestr(f"annotations/instances_{split}.json", json.dumps(coco))
    archives = {"annotations_trainval2017.zip": abuf.getvalue(), f"{split}.zip": zbuf.getvalue()}
    serve(files, monkeypatch, name, archives, checksums=False)
    root = str(tmp_path / "data")
    assert main(["data", "download", name, "--root", root, "--mirror", url]) == 0
    assert (
        main(
            [
                "detect",
                "train",
                "--data",
                name,
                "--root",  # the same as --data-root
                root,
                "--image-size",
                "64",
                "--epochs",
                "1",
                "--anchors",
                "2",
                "--out",
                str(tmp_path / "det"),
            ]
        )
        == 0
    )
    from cnnlab.engine.detect import DetectConfig
    from cnnlab.engine.detection_data import load_detection_data

    data = load_detection_data(DetectConfig(data=name, data_root=root, image_size=64))
    assert data.class_names == ["car", "dog"] and data.labels[0].tolist() == [1]


def link_tar(path: Path, member: str, linkname: str, kind: bytes) -> Path:
    """A tar archive of one file and one link ``member`` -> ``linkname`` (tarfile.SYMTYPE or
    LNKTYPE: a hard link's target is named from the archive's root, a symbolic link's from
    the link's own folder)."""
    with tarfile.open(path, "w") as tar:
        data = tarfile.TarInfo("d/data.bin")
        data.size = 1
        tar.addfile(data, io.BytesIO(b"x"))
        link = tarfile.TarInfo(member)
        link.type, link.linkname = kind, linkname
        tar.addfile(link)
    return path


# Python 3.12+ warns of 3.14's default filter when none is given, as the emulated older path does
@pytest.mark.filterwarnings("ignore:Python 3.14 will:DeprecationWarning")
@pytest.mark.parametrize("data_filter", [True, False], ids=["python-filter", "older-python"])
def test_links_out_of_the_archive_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_filter: bool
) -> None:
    """Every link must stay inside the folder, checked by our own test of each member (Python
    before 3.10.12 has no tarfile.data_filter to fall back on): a hard link "a/b/c" ->
    "../x" points at <folder>/../x, a symbolic one at <folder>/a/x."""
    if not data_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    into = tmp_path / "into"
    refused = [
        ("a/b/c", "../outside.txt", tarfile.LNKTYPE),
        ("a/c", "../../outside.txt", tarfile.SYMTYPE),
        ("a/c", "/etc/hostname", tarfile.SYMTYPE),
    ]
    for i, (member, target, kind) in enumerate(refused):
        archive = link_tar(tmp_path / f"bad{i}.tar", member, target, kind)
        into.mkdir()
        with pytest.raises(CnnlabError, match="would escape the target folder"):
            D.unpack(archive, into)
        assert not (into / member).exists()
        shutil.rmtree(into)
    device = tmp_path / "device.tar"
    with tarfile.open(device, "w") as tar:
        node = tarfile.TarInfo("d/null")
        node.type, node.devmajor, node.devminor = tarfile.CHRTYPE, 1, 3
        tar.addfile(node)
    with pytest.raises(CnnlabError, match="'d/null' is a device or a pipe"):
        D.unpack(device, tmp_path)
    # links that stay inside are unpacked
    for i, (member, target, kind) in enumerate(
        [("a/c", "d/data.bin", tarfile.LNKTYPE), ("d/c", "data.bin", tarfile.SYMTYPE)]
    ):
        archive = link_tar(tmp_path / f"good{i}.tar", member, target, kind)
        into.mkdir()
        D.unpack(archive, into)
        assert (into / member).read_bytes() == b"x"
        shutil.rmtree(into)


def test_a_damaged_archive_is_one_error_naming_it(tmp_path: Path) -> None:
    """COCO's archives are checked by size alone: one cut short or with a bad checksum inside
    reaches unpack, and must be one error naming the file, not a traceback."""
    data = bytes(range(256)) * 400
    tgz = tmp_path / "cut.tar.gz"
    tgz.write_bytes(tar_bytes({"d/a.bin": data}))
    tgz.write_bytes(tgz.read_bytes()[: tgz.stat().st_size // 2])
    zipped = tmp_path / "crc.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("d/a.bin", data)
    raw = bytearray(zipped.read_bytes())
    raw[raw.index(data[:64]) + 100] ^= 0xFF  # one stored byte changed: its CRC fails
    zipped.write_bytes(bytes(raw))
    gz = tmp_path / "bad.gz"
    gz.write_bytes(b"\x1f\x8b" + b"\x00" * 30)  # a gzip's magic, then no valid header
    for archive in (tgz, zipped, gz):
        into = tmp_path / f"into-{archive.stem}"
        into.mkdir()
        with pytest.raises(CnnlabError, match=f"{archive.name}: a damaged archive"):
            D.unpack(archive, into)
