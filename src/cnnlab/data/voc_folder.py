"""Pascal VOC-style folders of one's own: one XML file of boxes per image (what LabelImg saves by
default, and CVAT's and Roboflow's "Pascal VOC" exports) and class maps in ``SegmentationClass``
(CVAT's "Segmentation mask" export), with the class names, and their colours, of a
``labelmap.txt``.

Layouts read for boxes (:func:`read_voc_folder`):

- ``root/Annotations/*.xml`` with the images in ``root/JPEGImages/`` (VOC's own, CVAT), split
  by ``root/ImageSets/Main/{train,val,test}.txt`` where train and val lists are there;
  ``annotations/`` and ``images/`` (lower case, as Kaggle's sets come) alike;
- the XML files beside the images, in ``root`` (LabelImg's "save in the image's folder") or in
  its split folders ``root/train/``, ``root/valid/``, ... (Roboflow), which are then the splits.

An XML file names its image (``<filename>``; else the image of the same stem beside it), its
size and its objects (``<name>``, ``<bndbox>`` ``xmin ymin xmax ymax``: VOC's 1-based pixel
corners, read as continuous ``x1 - 1, y1 - 1, x2, y2``; tools that write 0-based corners lose
nothing but a pixel clipped at the edge) and ``<difficult>``.
An image without an XML file is left out with a warning: an image with no objects needs an XML
with no ``<object>``, as LabelImg saves one.

A phone photo whose EXIF tag turns it a quarter (:mod:`cnnlab.data.orientation`) and whose
``<size>`` is its stored width and height was labelled on the stored pixels (LabelImg does
not turn photos): its boxes are turned with it, to lie where training sees the objects. Where
the size cannot tell (a photo flipped or upside down, or a square one), they are taken as
placed on the photo as shown, with a warning.

The class names are those of ``labelmap.txt`` (CVAT's and Datumaro's
``name:r,g,b:parts:actions``; its ``background`` is the maps' class 0 and no box's class),
else of ``classes.txt`` (one per line), else the names the XML files use, sorted
(:func:`~cnnlab.data.textfiles.sorted_names`).

Class maps (:func:`cnnlab.engine.segment_data.voc_folder_segmentation`):
``root/SegmentationClass/<stem>.png`` beside ``root/JPEGImages/<stem>.*``, palette or grey PNGs
of class indices (VOC's own) or RGB pictures in ``labelmap.txt``'s colours (CVAT's), 255 or
VOC's pale border colour for "nobody labelled"; split by ``ImageSets/Segmentation``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnlab.data.folder import IMAGE_SUFFIXES
from cnnlab.data.split_folders import has_pair_folder, split_dirs
from cnnlab.data.textfiles import read_lines, read_names, sorted_names
from cnnlab.errors import CnnlabError, collected, raise_unless_collected
from cnnlab.words import counted

ANNOTATION_DIRS = ("Annotations", "annotations")
IMAGE_DIRS = ("JPEGImages", "images")
BOX_TAGS = ("xmin", "ymin", "xmax", "ymax")


@dataclass(frozen=True)
class VocImage:
    """One image with its objects: labels ``(N,)`` int64, boxes ``(N, 4)`` xyxy relative to the
    image, VOC's ``difficult`` flags ``(N,)`` bool, and the split its folder names (``None``
    where the layout has none)."""

    image: Path
    labels: np.ndarray
    boxes_xyxy: np.ndarray
    difficult: np.ndarray
    split: str | None = None


@dataclass(frozen=True)
class _Xml:
    """One parsed XML file, its class names not yet numbered."""

    path: Path
    image: Path
    names: list[str]
    boxes: np.ndarray  # (N, 4) xyxy relative
    difficult: np.ndarray
    split: str | None
    unsure: bool = False  # an EXIF orientation <size> cannot tell was seen or not


def _first_dir(root: Path, names: Sequence[str]) -> Path | None:
    return next((root / n for n in names if (root / n).is_dir()), None)


def _has_xml(folder: Path) -> bool:
    return any(p.suffix.lower() == ".xml" for p in folder.iterdir() if p.is_file())


def is_voc_folder(root: str | Path) -> bool:
    """Whether ``root`` holds boxes as VOC XML files in one of the layouts above (and no YOLO
    ``labels/`` folder, which wins where both are)."""
    root = Path(root)
    if not root.is_dir() or has_pair_folder(root, "labels"):
        return False
    if (found := _first_dir(root, ANNOTATION_DIRS)) is not None and _has_xml(found):
        return True
    return _has_xml(root) or any(_has_xml(d) for d, _ in split_dirs(root))


def is_voc_segmentation_folder(root: str | Path) -> bool:
    """Whether ``root`` holds class maps in VOC's layout (``SegmentationClass/``)."""
    return (Path(root) / "SegmentationClass").is_dir()


def read_labelmap(path: Path) -> list[tuple[str, tuple[int, int, int] | None]]:
    """``labelmap.txt`` as ``[(name, (r, g, b) or None), ...]`` in its order: CVAT's and Datumaro's
    ``name:r,g,b:parts:actions`` lines (``#`` starts a comment; a line without a colour is a
    name alone)."""
    labels: list[tuple[str, tuple[int, int, int] | None]] = []
    for n, line in enumerate(read_lines(path), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, rest = line.partition(":")
        colour_text = rest.split(":")[0].strip()
        colour = None
        if colour_text:
            try:
                rgb = tuple(int(v) for v in colour_text.split(","))
            except ValueError:
                rgb = ()
            if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
                raise CnnlabError(
                    f"{path}:{n}: colour {colour_text!r} is not 'r,g,b' (each 0-255), as in "
                    "'car:250,50,83::'"
                )
            colour = (rgb[0], rgb[1], rgb[2])
        if not name.strip():
            raise CnnlabError(f"{path}:{n}: a line with no label name")
        labels.append((name.strip(), colour))
    if not labels:
        raise CnnlabError(f"{path}: no labels (one 'name:r,g,b::' line each)")
    first: dict[tuple[int, int, int], str] = {}
    for name, colour in labels:
        if colour is not None and first.setdefault(colour, name) != name:
            raise CnnlabError(
                f"{path}: {first[colour]!r} and {name!r} share the colour {colour}: a mask "
                "pixel of it could be either"
            )
    return labels


def given_names(root: Path) -> tuple[list[str], str] | None:
    """The class names ``root`` lists (``labelmap.txt``, else ``classes.txt``) and the file's
    name, or ``None`` when it lists none."""
    if (root / "labelmap.txt").is_file():
        return [name for name, _ in read_labelmap(root / "labelmap.txt")], "labelmap.txt"
    if (root / "classes.txt").is_file():
        return read_names(root / "classes.txt"), "classes.txt"
    return None


def image_files_in(folder: Path) -> dict[str, Path]:
    """The image files directly in ``folder`` (hidden ones left out), by file name and by stem."""
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."):
            found[p.name] = p
            found.setdefault(p.stem, p)
    return found


def _image_of(xml: Path, filename: str, images: dict[str, Path]) -> Path | None:
    """The image an XML file names (``<filename>``, its folder part ignored: it is the labelling
    machine's), else the one with the XML's stem."""
    name = Path(filename.replace("\\", "/")).name
    return images.get(name) if name in images else images.get(xml.stem)


def parse_xml(xml: Path, images: dict[str, Path], split: str | None) -> _Xml | None:
    """One XML file's image (among ``images``, :func:`image_files_in`) and objects, boxes
    relative to the image's size (``<size>``, else the image file's); ``None`` with no image
    there. Bad files name the
    problem: malformed XML, a box without four numbers, one outside the image, a ``<size>`` that
    is not the image's."""
    import xml.etree.ElementTree as ET

    try:
        tree = ET.parse(xml)
    except ET.ParseError as exc:
        raise CnnlabError(f"{xml}: malformed XML ({exc})") from None
    image = _image_of(xml, (tree.findtext("filename") or "").strip(), images)
    if image is None:
        return None
    from cnnlab.data.orientation import boxes_as_shown, shown_size, stored_and_orientation

    stored, orientation = stored_and_orientation(image)
    shown = shown_size(stored, orientation)
    try:
        w, h = (int(float(tree.findtext(f"size/{k}") or 0)) for k in ("width", "height"))
    except ValueError:
        raise CnnlabError(f"{xml}: <size> says a width or height that is not a number") from None
    if w <= 0 or h <= 0:  # some tools leave <size> out or write zeros: the image's own
        w, h = shown
    elif (w, h) not in (stored, shown):
        turned = f" ({stored[0]}x{stored[1]} as stored)" if shown != stored else ""
        raise CnnlabError(
            f"{xml}: <size> says {w}x{h}, but {image.name} is {shown[0]}x{shown[1]}{turned} "
            "(resized or turned after labelling? the boxes would land in the wrong place)"
        )
    # labelled on the stored pixels of a photo the tag turns: the boxes turn with it
    on_stored = orientation != 1 and (w, h) == stored and stored != shown
    unsure = orientation != 1 and stored == shown  # flipped, upside down, or square
    names, boxes, difficult = [], [], []
    for obj in tree.iter("object"):
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise CnnlabError(f"{xml}: an <object> with no <name>")
        try:
            x1, y1, x2, y2 = (float(obj.findtext(f"bndbox/{k}") or "") for k in BOX_TAGS)
        except (TypeError, ValueError):
            raise CnnlabError(f"{xml}: object {name!r} has a malformed <bndbox>") from None
        if not (0 <= x1 <= x2 <= w + 1 and 0 <= y1 <= y2 <= h + 1):  # 1-based: x1 = x2 is a pixel
            raise CnnlabError(
                f"{xml}: box {[x1, y1, x2, y2]} of {name!r} lies outside the {w}x{h} image "
                "(or has no area)"
            )
        names.append(name)
        box = [max(x1 - 1, 0) / w, max(y1 - 1, 0) / h, min(x2, w) / w, min(y2, h) / h]
        boxes.append(box)
        difficult.append((obj.findtext("difficult") or "0").strip() == "1")
    relative = np.asarray(boxes, np.float32).reshape(-1, 4)
    if on_stored:
        relative = boxes_as_shown(relative, orientation)
    return _Xml(xml, image, names, relative, np.asarray(difficult, bool), split, unsure)


def _xml_folders(root: Path) -> list[tuple[Path, Path, str | None]]:
    """``(folder of XML files, folder of their images, split)`` for ``root``'s layout."""
    annotations = _first_dir(root, ANNOTATION_DIRS)
    if annotations is not None and _has_xml(annotations):
        images = _first_dir(root, IMAGE_DIRS)
        if images is None:
            raise CnnlabError(
                f"{root}: {annotations.name}/ but no JPEGImages/ or images/ folder beside it"
            )
        return [(annotations, images, None)]
    if _has_xml(root):
        return [(root, root, None)]
    return [(d, d, split) for d, split in split_dirs(root) if _has_xml(d)]


def read_voc_folder(
    root: str | Path, classes: tuple[Sequence[str], str] | None = None
) -> tuple[list[VocImage], list[str]]:
    """Every annotated image of ``root`` with its objects, and the class names (module
    docstring; or ``classes``: the names and what lists them, as for VOC's own 20). An XML file
    whose image is not there, and an image without an XML file, are left out with a warning;
    an object whose class a listed ``labelmap.txt`` or ``classes.txt`` lacks is an error naming
    both files."""
    root = Path(root)
    parsed: list[_Xml] = []
    lonely_xml: list[Path] = []
    unlabelled: list[Path] = []
    for xml_dir, image_dir, split in _xml_folders(root):
        images = image_files_in(image_dir)
        xmls = sorted(p for p in xml_dir.iterdir() if p.suffix.lower() == ".xml" and p.is_file())
        for xml in xmls:
            try:
                found = parse_xml(xml, images, split)
            except CnnlabError as exc:  # data check names every bad file; training the first
                if collected(exc):
                    continue
                raise
            if found is None:
                lonely_xml.append(xml)
            else:
                parsed.append(found)
        used = {p.image for p in parsed}
        unlabelled += sorted({i for i in images.values() if i not in used})
    if not parsed:
        raise CnnlabError(
            f"{root}: no XML file has its image (looked for each <filename>, or the image of the "
            "XML's name, "
            + ("in JPEGImages/ or images/)" if _first_dir(root, ANNOTATION_DIRS) else "beside it)")
        )
    listed = given_names(root) if classes is None else classes
    if listed is not None:
        names, source = listed
        boxes_names = [n for n in names if n.lower() != "background"]
        known = set(boxes_names)
        for p in parsed:
            if unknown := [n for n in p.names if n not in known]:
                raise_unless_collected(
                    f"{p.path}: class {unknown[0]!r} is not in {source} ({', '.join(boxes_names)})"
                )
        parsed = [p for p in parsed if set(p.names) <= known]  # data check: collected above
    else:
        boxes_names = sorted_names({n for p in parsed for n in p.names})
    if lonely_xml:
        warnings.warn(
            f"{root}: {counted(len(lonely_xml), 'XML file')} with no image, left out, e.g. "
            f"{lonely_xml[0].relative_to(root)}",
            stacklevel=2,
        )
    if unsure := [p.image for p in parsed if p.unsure]:
        warnings.warn(
            f"{root}: {counted(len(unsure), 'photo')} with an EXIF orientation (flipped, upside "
            f"down, or square and turned) that <size> cannot tell was seen, e.g. "
            f"{unsure[0].relative_to(root)}: the boxes are taken as placed on the photo as "
            "shown; a tool that shows photos as stored (LabelImg) placed them elsewhere",
            stacklevel=2,
        )
    if unlabelled:
        warnings.warn(
            f"{root}: {counted(len(unlabelled), 'image')} with no XML file, left out, e.g. "
            f"{unlabelled[0].relative_to(root)} (an image with no objects needs an XML file "
            "with no <object>)",
            stacklevel=2,
        )
    index = {n: i for i, n in enumerate(boxes_names)}
    items = [
        VocImage(
            p.image,
            np.asarray([index[n] for n in p.names], np.int64),
            p.boxes,
            p.difficult,
            p.split,
        )
        for p in parsed
    ]
    return items, boxes_names


def voc_xml(
    filename: str, size: tuple[int, int], objects: Sequence[tuple[str, Sequence[float]]]
) -> str:
    """One image's VOC XML: ``size`` ``(width, height)``, each object ``(name, (x1, y1, x2, y2))``
    in continuous pixel coordinates, written as VOC's 1-based corners (``x1 + 1 ... x2``)."""
    from xml.sax.saxutils import escape

    rows = [
        "<annotation>",
        f"  <filename>{escape(filename)}</filename>",
        f"  <size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>",
    ]
    for name, (x1, y1, x2, y2) in objects:
        rows += [
            "  <object>",
            f"    <name>{escape(name)}</name><difficult>0</difficult>",
            f"    <bndbox><xmin>{x1 + 1:g}</xmin><ymin>{y1 + 1:g}</ymin>"
            f"<xmax>{x2:g}</xmax><ymax>{y2:g}</ymax></bndbox>",
            "  </object>",
        ]
    return "\n".join([*rows, "</annotation>", ""])
