"""Synthetic scenes with exact annotations, shared by localisation, detection and segmentation.

Objects stand in for the slides' classes by shape (1 pedestrian: a tall figure with a head;
2 car: a wide body with a cabin and two wheels; 3 motorcycle: two big wheels and a frame; more
classes: triangle, star, diamond, cross, ring), with random size, colour, rotation and position,
drawn in order so later objects occlude earlier ones, on cluttered backgrounds made from
scikit-image's real texture photos (brick, grass, gravel) with tint, distractor blobs and noise.

Every object carries its class, its box (``xyxy``, continuous pixel coordinates: a pixel ``(r, c)``
covers ``[c, c+1) x [r, r+1)``, no "+1"), its visible per-pixel mask and five named landmarks
(:data:`LANDMARKS`; mirroring swaps :data:`LANDMARK_PAIRS`). Objects hidden for more than
``max_occlusion`` of their area are dropped. Thousands of 128x128 scenes take seconds.

:func:`write_yolo`, :func:`write_coco` and :func:`write_masks` save scenes in the formats users
have, so the file loaders are tested on the same data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from skimage.draw import polygon as draw_polygon

from cnnlab.config import check_max_objects
from cnnlab.data.memory import require_memory
from cnnlab.data.textfiles import write_names
from cnnlab.errors import CnnlabError

CLASS_NAMES = ("pedestrian", "car", "motorcycle", "triangle", "star", "diamond", "cross", "ring")
LANDMARKS = ("top_left", "top_right", "bottom_left", "bottom_right", "center")
LANDMARK_PAIRS = ((0, 1), (2, 3))  # left/right identities swapped by a horizontal mirror
MEAN, STD = 0.5, 0.25  # every scene task feeds its network (x / 255 - MEAN) / STD


def standardise(images: Any) -> Any:
    """Pixel values 0..255 (a float NumPy array or tensor) -> ``(x / 255 - 0.5) / 0.25``: how the
    scene tasks (localise, detect, segment, sliding windows) and the visualiser feed their
    networks."""
    return (images / 255 - MEAN) / STD


def _circle(cx: float, cy: float, r: float, n: int = 20) -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)


def _star(n: int = 5) -> np.ndarray:
    t = np.linspace(-math.pi / 2, 1.5 * math.pi, 2 * n, endpoint=False)
    r = np.where(np.arange(2 * n) % 2 == 0, 0.5, 0.22)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


# Each class: (aspect = width / height, polygons in a unit frame x, y in [-0.5, 0.5], y down).
# A polygon with a negative first coordinate flag is carved out (the ring's hole).
SHAPES: dict[str, tuple[float, list[np.ndarray]]] = {
    "pedestrian": (
        0.45,
        [np.array([[-0.3, -0.15], [0.3, -0.15], [0.4, 0.5], [-0.4, 0.5]]), _circle(0, -0.33, 0.17)],
    ),
    "car": (
        2.0,
        [
            np.array([[-0.5, -0.05], [0.5, -0.05], [0.5, 0.3], [-0.5, 0.3]]),
            np.array([[-0.28, -0.05], [-0.15, -0.5], [0.2, -0.5], [0.32, -0.05]]),
            _circle(-0.3, 0.3, 0.18),
            _circle(0.3, 0.3, 0.18),
        ],
    ),
    "motorcycle": (
        1.4,
        [
            _circle(-0.3, 0.22, 0.26),
            _circle(0.3, 0.22, 0.26),
            np.array([[-0.32, 0.1], [-0.05, -0.45], [0.1, -0.45], [0.32, 0.1], [0.0, 0.0]]),
        ],
    ),
    "triangle": (1.0, [np.array([[0.0, -0.5], [0.5, 0.5], [-0.5, 0.5]])]),
    "star": (1.0, [_star()]),
    "diamond": (0.7, [np.array([[0.0, -0.5], [0.5, 0.0], [0.0, 0.5], [-0.5, 0.0]])]),
    "cross": (
        1.0,
        [
            np.array([[-0.15, -0.5], [0.15, -0.5], [0.15, 0.5], [-0.15, 0.5]]),
            np.array([[-0.5, -0.15], [0.5, -0.15], [0.5, 0.15], [-0.5, 0.15]]),
        ],
    ),
    "ring": (1.0, [_circle(0, 0, 0.5, 28)]),
}
RING_HOLE = _circle(0, 0, 0.25, 20)
UNIT_LANDMARKS = np.array([[-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5], [0.5, 0.5], [0.0, 0.0]])


@dataclass(frozen=True)
class Scene:
    """One image and its annotations (N objects, K = 5 landmarks each)."""

    image: np.ndarray  # (H, W, 3) uint8
    labels: np.ndarray  # (N,) int64, 0-based class index into class_names
    boxes_xyxy: np.ndarray  # (N, 4) float32, continuous pixel coordinates
    masks: np.ndarray  # (N, H, W) bool, visible pixels of each object
    landmarks: np.ndarray  # (N, K, 2) float32, (x, y) pixel coordinates
    class_names: tuple[str, ...]

    @property
    def semantic(self) -> np.ndarray:
        """(H, W) uint8 per-pixel labels: 0 background, ``c + 1`` for class ``c``."""
        out = np.zeros(self.image.shape[:2], np.uint8)
        for label, mask in zip(self.labels, self.masks, strict=True):
            out[mask] = label + 1
        return out


@lru_cache(maxsize=1)
def _textures() -> tuple[np.ndarray, ...]:
    import skimage.data

    return tuple(
        getattr(skimage.data, n)().astype(np.float32) / 255 for n in ("brick", "grass", "gravel")
    )


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    tex = _textures()[rng.integers(3)]
    side = min(tex.shape)  # 512: a larger scene stretches the whole texture
    crop = int(rng.integers(min(size, side), side + 1))
    y, x = rng.integers(0, tex.shape[0] - crop + 1), rng.integers(0, tex.shape[1] - crop + 1)
    patch = tex[y : y + crop, x : x + crop]
    idx = (np.arange(size) * crop / size).astype(int)
    patch = patch[np.ix_(idx, idx)]
    tint = rng.uniform(0.25, 0.85, 3)
    img = patch[..., None] * tint * 1.2 + rng.uniform(-0.1, 0.1, 3)
    for _ in range(int(rng.integers(2, 6))):  # clutter: soft distractor blobs
        cy, cx = rng.uniform(0, size, 2)
        ry, rx = rng.uniform(size * 0.03, size * 0.12, 2)
        yy, xx = np.ogrid[:size, :size]
        blob = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        img[blob] = img[blob] * 0.5 + rng.uniform(0, 1, 3) * 0.5
    return img


def _transform(
    points: np.ndarray, w: float, h: float, angle: float, cx: float, cy: float
) -> np.ndarray:
    p = points * np.array([w, h])
    c, s = math.cos(angle), math.sin(angle)
    return p @ np.array([[c, s], [-s, c]]) + np.array([cx, cy])


def _shape_mask(
    name: str, size: int, w: float, h: float, angle: float, cx: float, cy: float
) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    for poly in SHAPES[name][1]:
        pts = _transform(poly, w, h, angle, cx, cy)
        rr, cc = draw_polygon(pts[:, 1], pts[:, 0], (size, size))
        mask[rr, cc] = True
    if name == "ring":
        pts = _transform(RING_HOLE, w, h, angle, cx, cy)
        rr, cc = draw_polygon(pts[:, 1], pts[:, 0], (size, size))
        mask[rr, cc] = False
    return mask


MIN_SIZE = 32  # with the default scales: 1.5 objects per scene at 32 px, none at 16


def check_scene_size(image_size: int) -> None:
    """Refuse training sets of scenes too small to hold objects (objects under 30 pixels are
    not drawn): below :data:`MIN_SIZE` almost every scene would be empty background."""
    if image_size < MIN_SIZE:
        raise CnnlabError(
            f"--image-size {image_size}: scenes need {MIN_SIZE} pixels or more (objects under "
            "30 pixels are not drawn, so smaller scenes are almost all empty)"
        )


def check_scene_memory(n: int, image_size: int, max_objects: int = 6) -> None:
    """Refuse ``n`` scenes whose pixels and masks (uint8 RGB plus a boolean mask per object,
    all held in memory while they are drawn) would need more than half of this machine's
    memory (:func:`cnnlab.data.memory.require_memory`)."""
    require_memory(
        n * image_size * image_size * (3 + max_objects),
        f"--images {n} at {image_size} px",
        "use fewer images or a smaller --image-size",
    )


def make_scene(
    rng: np.random.Generator,
    image_size: int = 128,
    num_classes: int = 3,
    min_objects: int = 0,
    max_objects: int = 6,
    min_scale: float = 0.18,
    max_scale: float = 0.45,
    max_occlusion: float = 0.5,
) -> Scene:
    """One random scene; see the module docstring."""
    if not 1 <= num_classes <= len(CLASS_NAMES):
        raise CnnlabError(f"num_classes must be 1..{len(CLASS_NAMES)}, got {num_classes}")
    if not 0 <= min_objects <= max_objects:
        raise CnnlabError("need 0 <= min_objects <= max_objects")
    check_max_objects(max_objects)
    size = image_size
    img = _background(size, rng)
    names = CLASS_NAMES[:num_classes]
    drawn: list[tuple[int, np.ndarray, np.ndarray]] = []
    for _ in range(int(rng.integers(min_objects, max_objects + 1))):
        label = int(rng.integers(num_classes))
        aspect = SHAPES[names[label]][0]
        extent = rng.uniform(min_scale, max_scale) * size  # the longer side
        w, h = (extent, extent / aspect) if aspect >= 1 else (extent * aspect, extent)
        angle = math.radians(rng.uniform(-25, 25))
        cx, cy = rng.uniform(0.1 * size, 0.9 * size, 2)
        mask = _shape_mask(names[label], size, w, h, angle, cx, cy)
        if mask.sum() < 30:
            continue
        colour = rng.uniform(0, 1, 3)
        shade = 0.85 + 0.3 * (np.linspace(0, 1, size)[:, None] * rng.uniform(-1, 1))
        img[mask] = colour * shade[np.nonzero(mask)[0]]  # (n, 3): each pixel's row's shade
        landmarks = _transform(UNIT_LANDMARKS, w, h, angle, cx, cy)
        drawn.append((label, mask, landmarks))
    # Occlusion: each object loses the pixels of every object drawn after it.
    labels, boxes, masks, marks = [], [], [], []
    covered = np.zeros((size, size), bool)
    for label, mask, landmarks in reversed(drawn):
        visible = mask & ~covered
        covered |= mask
        if visible.sum() < max(30, (1 - max_occlusion) * mask.sum()):
            continue
        rows, cols = np.nonzero(visible)
        labels.append(label)
        boxes.append([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
        masks.append(visible)
        marks.append(landmarks)
    img = np.clip(img + rng.normal(0, 0.03, img.shape), 0, 1)
    order = slice(None, None, -1)  # back to drawing order
    return Scene(
        image=(img * 255).round().astype(np.uint8),
        labels=np.array(labels[order], np.int64),
        boxes_xyxy=np.array(boxes[order], np.float32).reshape(-1, 4),
        masks=np.array(masks[order], bool).reshape(-1, size, size),
        landmarks=np.array(marks[order], np.float32).reshape(-1, len(LANDMARKS), 2),
        class_names=names,
    )


def make_scenes(n: int, seed: int = 0, **kwargs: object) -> list[Scene]:
    """``n`` scenes from one seeded generator (same seed, same scenes)."""
    rng = np.random.default_rng(seed)
    return [make_scene(rng, **kwargs) for _ in range(n)]  # type: ignore[arg-type]


# --- writers ----------------------------------------------------------------------------------


def _save_images(scenes: list[Scene], folder: Path) -> list[str]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, scene in enumerate(scenes):
        name = f"{i:06d}.png"
        Image.fromarray(scene.image).save(folder / name)
        names.append(name)
    return names


def write_yolo(scenes: list[Scene], root: str | Path) -> Path:
    """``root/images/*.png``, ``root/labels/*.txt`` (``class cx cy w h``, relative to the image)
    and ``root/classes.txt``."""

    def boxes(scene: Scene) -> list[str]:
        h, w = scene.image.shape[:2]
        return [
            f"{label} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} "
            f"{(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"
            for label, (x1, y1, x2, y2) in zip(scene.labels, scene.boxes_xyxy, strict=True)
        ]

    return _write_label_folder(scenes, root, boxes)


def write_yolo_polygons(scenes: list[Scene], root: str | Path) -> Path:
    """Ultralytics' segmentation layout: ``root/images/*.png``, ``root/labels/*.txt`` with one
    polygon per object (``class x1 y1 x2 y2 ...``, relative to the image: the outline of its
    visible mask, traced by scikit-image at the pixels' edges and simplified to within half a
    pixel; an object that another splits in two keeps its larger part) and
    ``root/classes.txt``."""

    def polygons(scene: Scene) -> list[str]:
        h, w = scene.image.shape[:2]
        lines = []
        for label, mask in zip(scene.labels, scene.masks, strict=True):
            outline = mask_outline(mask)
            if outline is not None:
                xy = (outline / [w, h]).clip(0, 1).ravel()
                lines.append(f"{label} " + " ".join(f"{v:.6f}" for v in xy))
        return lines

    return _write_label_folder(scenes, root, polygons)


def _write_label_folder(
    scenes: list[Scene], root: str | Path, lines_of: Callable[[Scene], list[str]]
) -> Path:
    """``root/images/*.png``, one ``root/labels/*.txt`` per image holding ``lines_of(scene)``,
    and ``root/classes.txt``: the YOLO layout, whatever the label lines are."""
    root = Path(root)
    names = _save_images(scenes, root / "images")
    (root / "labels").mkdir(parents=True, exist_ok=True)
    for scene, name in zip(scenes, names, strict=True):
        lines = lines_of(scene)
        (root / "labels" / name.replace(".png", ".txt")).write_text(
            "\n".join(lines) + "\n" if lines else ""
        )
    write_names(root / "classes.txt", scenes[0].class_names)
    return root


def mask_outline(mask: np.ndarray) -> np.ndarray | None:
    """``(K, 2)`` ``x, y`` pixel-edge coordinates of the largest outline of a boolean mask
    ``(H, W)`` (``None`` when the mask is empty). Each pixel is blown up 2x before tracing so the
    traced iso-line runs along the pixels' edges, not through their centres (marching squares
    cuts each corner by a quarter pixel); the polygon is then simplified (Douglas-Peucker, half a
    pixel)."""
    from skimage.measure import approximate_polygon, find_contours

    from cnnlab.data.yolo import polygon_area

    if not mask.any():
        return None
    big = np.pad(np.kron(mask, np.ones((2, 2))), 1)  # 2x, with a frame of background
    contours = find_contours(big, 0.5)
    largest = max(contours, key=polygon_area)  # (row, col) points: the same area
    rows_cols = approximate_polygon(largest, tolerance=1.0)[:-1]  # closed: the last is the first
    return (rows_cols[:, ::-1] - 0.5) / 2  # (row, col) at 2x with the frame -> (x, y) edges


def write_coco(scenes: list[Scene], root: str | Path) -> Path:
    """``root/images/*.png`` and ``root/annotations.json`` (COCO: ``bbox`` as ``[x, y, w, h]``,
    the visible mask as compressed RLE ``segmentation``, categories numbered from 1, landmarks
    as ``keypoints`` ``[x, y, 2, ...]``)."""
    from pycocotools import mask as mask_utils

    root = Path(root)
    names = _save_images(scenes, root / "images")
    images, annotations = [], []
    for i, (scene, name) in enumerate(zip(scenes, names, strict=True)):
        h, w = scene.image.shape[:2]
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
        for label, box, mask, marks in zip(
            scene.labels, scene.boxes_xyxy, scene.masks, scene.landmarks, strict=True
        ):
            x1, y1, x2, y2 = (float(v) for v in box)
            kps = [v for x, y in marks.tolist() for v in (round(x, 2), round(y, 2), 2)]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": int(label) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "segmentation": _rle(mask_utils, mask),
                    "area": int(mask.sum()),
                    "iscrowd": 0,
                    "keypoints": kps,
                    "num_keypoints": len(marks),
                }
            )
    categories = [
        {"id": c + 1, "name": n, "keypoints": list(LANDMARKS)}
        for c, n in enumerate(scenes[0].class_names)
    ]
    out = root / "annotations.json"
    out.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    return out


def _rle(mask_utils: Any, mask: np.ndarray) -> dict[str, Any]:
    """A boolean mask as COCO's compressed run-length encoding, JSON-ready."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def write_masks(scenes: list[Scene], root: str | Path) -> Path:
    """``root/images/*.png``, ``root/masks/*.png`` (palette PNGs of per-pixel class indices, 0 =
    background, in VOC's colours) and ``root/classes.txt`` (background first)."""
    from PIL import Image

    from cnnlab.data.palettes import voc_colormap

    root = Path(root)
    names = _save_images(scenes, root / "images")
    (root / "masks").mkdir(parents=True, exist_ok=True)
    palette = voc_colormap().tobytes()  # as VOC's SegmentationClass masks are coloured
    for scene, name in zip(scenes, names, strict=True):
        m = Image.fromarray(scene.semantic, mode="P")
        m.putpalette(palette)
        m.save(root / "masks" / name)
    write_names(root / "classes.txt", ("background", *scenes[0].class_names))
    return root


def write_voc(scenes: list[Scene], root: str | Path) -> Path:
    """Pascal VOC's layout, as CVAT exports it: ``root/JPEGImages/*.png``, one
    ``root/Annotations/*.xml`` of boxes per image (VOC's 1-based pixel corners), the class maps
    as palette PNGs ``root/SegmentationClass/*.png`` (VOC's colours) and ``root/labelmap.txt``
    (``name:r,g,b::`` a line, background first), read by :mod:`cnnlab.data.voc_folder`."""
    from PIL import Image

    from cnnlab.data.palettes import voc_colormap
    from cnnlab.data.voc_folder import voc_xml

    root = Path(root)
    names = _save_images(scenes, root / "JPEGImages")
    for folder in ("Annotations", "SegmentationClass"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    colours = voc_colormap()
    class_names = scenes[0].class_names
    for scene, name in zip(scenes, names, strict=True):
        h, w = scene.image.shape[:2]
        objects = [
            (class_names[label], box.tolist())
            for label, box in zip(scene.labels, scene.boxes_xyxy, strict=True)
        ]
        stem = name.removesuffix(".png")
        xml = voc_xml(name, (w, h), objects)
        (root / "Annotations" / f"{stem}.xml").write_text(xml, encoding="utf-8")
        m = Image.fromarray(scene.semantic, mode="P")
        m.putpalette(colours.tobytes())
        m.save(root / "SegmentationClass" / name)
    (root / "labelmap.txt").write_text(
        "# label:color_rgb:parts:actions\n"
        + "".join(
            f"{n}:{','.join(map(str, colours[i]))}::\n"
            for i, n in enumerate(("background", *class_names))
        )
    )
    return root


def write_labelme(scenes: list[Scene], root: str | Path) -> Path:
    """labelme's layout: ``root/*.png`` each with its ``root/*.json`` (a polygon per object: the
    outline of its visible mask, as :func:`write_yolo_polygons` traces it, in pixels) and
    ``root/labels.txt`` (labelme's ``--labels`` file), read by :mod:`cnnlab.data.labelme`."""
    from cnnlab.data.labelme import labelme_json

    root = Path(root)
    names = _save_images(scenes, root)
    class_names = scenes[0].class_names
    for scene, name in zip(scenes, names, strict=True):
        h, w = scene.image.shape[:2]
        shapes = [
            (class_names[label], outline)
            for label, mask in zip(scene.labels, scene.masks, strict=True)
            if (outline := mask_outline(mask)) is not None
        ]
        (root / name.replace(".png", ".json")).write_text(labelme_json(name, (w, h), shapes))
    write_names(root / "labels.txt", ("__ignore__", "_background_", *class_names))
    return root
