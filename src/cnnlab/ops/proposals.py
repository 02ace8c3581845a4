"""Region proposals by selective search (Uijlings et al. 2013), what R-CNN classifies.

Slide "Faster algorithms": R-CNN and Fast R-CNN first "propose regions": a few hundred to two
thousand boxes likely to hold an object, instead of every window of a sliding-window detector.
R-CNN took them from selective search:

1. Over-segment the image into small regions of similar colour (Felzenszwalb & Huttenlocher's
   graph-based segmentation, scikit-image's ``felzenszwalb``).
2. Repeatedly merge the two most similar *neighbouring* regions, until one region is left; every
   region along the way, from the first segments to the whole image, is a proposal (its box).
   Similarity (section 3.2 of the paper) is the sum of three terms in [0, 1]:

   - colour: ``sum_k min(c_i^k, c_j^k)``, the intersection of the regions' colour histograms
     (25 bins per channel, L1-normalised);
   - size: ``1 - (size(r_i) + size(r_j)) / size(image)``, so small regions merge first;
   - fill: ``1 - (size(BB_ij) - size(r_i) - size(r_j)) / size(image)``, how well the two fill
     their joint bounding box ``BB_ij`` (regions that fit into each other merge early).

3. Diversify: repeat with several segmentation scales ``k``; the union of the boxes, duplicates
   dropped, is the proposal set.

Note: the paper also adds a texture similarity (histograms of Gaussian derivatives in 8
directions) and runs in several colour spaces; cnnlab keeps the three terms above, in RGB.
"""

from __future__ import annotations

import heapq

import numpy as np
from scipy import ndimage

from cnnlab.errors import CnnlabError

BINS = 25  # colour histogram bins per channel (the paper's choice)


def selective_search(
    image: np.ndarray,
    scales: tuple[float, ...] = (50.0, 100.0, 200.0),
    sigma: float = 0.8,
    min_size: int = 20,
    min_side: float = 2.0,
) -> np.ndarray:
    """Proposals ``(P, 4)`` xyxy (continuous pixel coordinates, float32) for an ``(H, W, 3)``
    uint8 image: the regions of the merge hierarchy at each segmentation ``scale`` (larger:
    bigger first segments), duplicates dropped, boxes thinner than ``min_side`` pixels
    dropped; ordered from the first segments to the whole image."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise CnnlabError(f"selective search wants an (H, W, 3) image, got shape {image.shape}")
    from skimage.segmentation import felzenszwalb

    boxes = []
    for scale in scales:
        labels = felzenszwalb(image, scale=scale, sigma=sigma, min_size=min_size)
        boxes.append(merge_hierarchy(image, labels))
    found = np.concatenate(boxes)
    _, first = np.unique(found.round(2), axis=0, return_index=True)
    found = found[np.sort(first)]
    wide = ((found[:, 2] - found[:, 0]) >= min_side) & ((found[:, 3] - found[:, 1]) >= min_side)
    return found[wide].astype(np.float32)


def merge_hierarchy(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Step 2 of the module docstring for one segmentation: ``labels (H, W)`` of regions
    ``0..n-1`` -> the boxes ``(2n - 1, 4)`` xyxy of the ``n`` regions and of each of the
    ``n - 1`` merges, in the order they were made (the last is the whole image's region)."""
    height, width = labels.shape
    n = int(labels.max()) + 1
    # each region's pixel count, box and colour histogram, rows 0..n-1 for the segments and
    # n..2n-2 for the regions the merges make
    sizes = np.zeros(2 * n - 1)
    sizes[:n] = np.bincount(labels.ravel(), minlength=n)
    boxes = np.zeros((2 * n - 1, 4))
    boxes[:n] = [
        [s[1].start, s[0].start, s[1].stop, s[0].stop] for s in ndimage.find_objects(labels + 1)
    ]
    bins = np.minimum(image.astype(np.int64) * BINS // 256, BINS - 1)  # (H, W, 3)
    slot = labels[..., None] * 3 * BINS + np.arange(3) * BINS + bins
    hist = np.zeros((2 * n - 1, 3 * BINS))
    hist[:n] = np.bincount(slot.ravel(), minlength=n * 3 * BINS).reshape(n, 3 * BINS)
    hist[:n] /= sizes[:n, None]  # each channel's bins sum to 1
    area = float(height * width)

    def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The three terms' sum for the region pairs ``(a[i], b[i])``."""
        joint = _union_box(boxes[a], boxes[b])
        joint_area = (joint[:, 2] - joint[:, 0]) * (joint[:, 3] - joint[:, 1])
        colour = np.minimum(hist[a], hist[b]).sum(1) / 3  # each channel sums to 1
        size = 1 - (sizes[a] + sizes[b]) / area
        fill = 1 - (joint_area - sizes[a] - sizes[b]) / area
        return colour + size + fill

    pairs = np.concatenate(
        [
            np.stack([labels[:, :-1].ravel(), labels[:, 1:].ravel()], 1),
            np.stack([labels[:-1].ravel(), labels[1:].ravel()], 1),
        ]
    )
    pairs = np.unique(np.sort(pairs[pairs[:, 0] != pairs[:, 1]], 1), axis=0)  # (P, 2) a < b
    neighbours: dict[int, set[int]] = {i: set() for i in range(n)}
    for a, b in pairs.tolist():
        neighbours[a].add(b)
        neighbours[b].add(a)
    # a max-heap of (-similarity, order made, a, b): the most similar pair first, ties to the
    # pair made first; a pair whose region has merged since is skipped when it comes up
    scores = similarity(pairs[:, 0], pairs[:, 1]).tolist()
    heap = [
        (-score, i, a, b)
        for i, (score, (a, b)) in enumerate(zip(scores, pairs.tolist(), strict=True))
    ]
    heapq.heapify(heap)
    made, merged, t = len(heap), np.zeros(2 * n - 1, bool), n
    while heap:
        _, _, a, b = heapq.heappop(heap)
        if merged[a] or merged[b]:
            continue
        boxes[t] = _union_box(boxes[a], boxes[b])
        sizes[t] = sizes[a] + sizes[b]
        hist[t] = (hist[a] * sizes[a] + hist[b] * sizes[b]) / sizes[t]
        merged[a] = merged[b] = True
        around = sorted((neighbours.pop(a) | neighbours.pop(b)) - {a, b})
        neighbours[t] = set(around)
        for m in around:
            neighbours[m] -= {a, b}
            neighbours[m].add(t)
        if around:
            new = similarity(np.array(around), np.full(len(around), t)).tolist()
            for m, score in zip(around, new, strict=True):
                heapq.heappush(heap, (-score, made, m, t))
                made += 1
        t += 1
    return boxes[:t]


def _union_box(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest xyxy boxes ``(..., 4)`` holding boxes ``a`` and ``b`` (``(..., 4)`` each)."""
    return np.concatenate(
        [np.minimum(a[..., :2], b[..., :2]), np.maximum(a[..., 2:], b[..., 2:])], -1
    )
