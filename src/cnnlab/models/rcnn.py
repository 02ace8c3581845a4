"""The R-CNN family's network: a small convolutional backbone, a region head, a proposal network.

Slide "Faster algorithms" names three detectors that share one design: propose regions, then
classify each region and regress its box ("output label + bounding box"). They differ in where
a region's features come from and where the regions come from:

- **R-CNN** (Girshick et al. 2013): each proposal is cut out of the image, warped to a fixed size
  and run through the CNN on its own (:meth:`RegionNet.classify_crops`): one CNN pass per region.
- **Fast R-CNN** (Girshick 2015): the CNN runs once over the whole image; each proposal's
  features are cut out of the shared map by RoI pooling (:func:`cnnlab.ops.roi.roi_pool`,
  :meth:`RegionNet.classify_regions`): "the convolution implementation of sliding windows".
- **Faster R-CNN** (Ren et al. 2016): the proposals come from the same shared map, from a small
  region proposal network (:meth:`RegionNet.propose`): at every cell, for each of ``A`` anchor
  boxes, an objectness score and the deltas that move the anchor onto an object.

One :class:`RegionNet` serves all three, so the comparison is of the methods, not of networks:

``backbone``: ``(B, C_in, H, W) -> (B, 2w, H/4, W/4)``: three 3x3 convolutions with ReLU, a 2x2
max pool after the first two (stride 4). ``head``: a region's ``(2w, p, p)`` pooled features ->
two fully connected layers of ``hidden`` units -> ``num_classes + 1`` scores (class 0 is
background) and ``4 num_classes`` box deltas (one box a class,
:func:`cnnlab.ops.roi.encode_deltas`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.ops.roi import roi_pool

STRIDE = 4  # the backbone's: one feature cell per 4x4 pixels


class RegionNet(nn.Module):
    """Backbone, region head and region proposal network (module docstring)."""

    def __init__(
        self,
        *,
        num_classes: int = 3,
        in_channels: int = 3,
        width: int = 32,
        pool: int = 4,
        hidden: int = 256,
        anchors: int = 5,
        crop_size: int = 32,
    ) -> None:
        super().__init__()
        c = 2 * width
        self.backbone = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(width, c, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c, c, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c * pool * pool, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
        )
        self.cls_score = nn.Linear(hidden, num_classes + 1)
        self.bbox_pred = nn.Linear(hidden, 4 * num_classes)
        # Faster R-CNN's proposal network: a 3x3 conv, then 1x1 convs per anchor
        self.rpn_conv = nn.Conv2d(c, c, 3, padding=1)
        self.rpn_objectness = nn.Conv2d(c, anchors, 1)
        self.rpn_deltas = nn.Conv2d(c, 4 * anchors, 1)
        self.num_classes, self.pool = num_classes, pool
        self.crop_size, self.anchors = crop_size, anchors

    def _scores_and_deltas(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(R, 2w, p, p)`` pooled features -> scores ``(R, K + 1)``, deltas ``(R, K, 4)``."""
        h = self.head(pooled)
        return self.cls_score(h), self.bbox_pred(h).view(len(h), self.num_classes, 4)

    def classify_regions(
        self, features: torch.Tensor, rois: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fast R-CNN: the backbone's map ``(B, 2w, H/4, W/4)`` of the whole images and regions
        ``rois (R, 5)`` ``(image, x1, y1, x2, y2)`` in pixels -> scores ``(R, K + 1)`` and deltas
        ``(R, K, 4)``, every region's features RoI-pooled from the shared map."""
        return self._scores_and_deltas(roi_pool(features, rois, self.pool, 1 / STRIDE))

    def classify_crops(
        self, images: torch.Tensor, rois: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """R-CNN: each region of ``rois (R, 5)`` cut out of ``images (B, C, H, W)``, warped to
        ``crop_size x crop_size`` (:func:`warp_regions`) and run through the backbone on its own;
        its whole map pooled to ``p x p`` as Fast R-CNN pools a region (RoI pooling of a region
        that covers the map is ``adaptive_max_pool2d``). Same outputs as
        :meth:`classify_regions`."""
        features = self.backbone(warp_regions(images, rois, self.crop_size))
        return self._scores_and_deltas(F.adaptive_max_pool2d(features, self.pool))

    def propose(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Faster R-CNN's region proposal network on the map ``(B, 2w, S_h, S_w)`` -> objectness
        logits ``(B, S_h, S_w, A)`` and anchor deltas ``(B, S_h, S_w, A, 4)``."""
        h = F.relu(self.rpn_conv(features))
        b, _, sh, sw = h.shape
        objectness = self.rpn_objectness(h).permute(0, 2, 3, 1)
        deltas = self.rpn_deltas(h).view(b, self.anchors, 4, sh, sw).permute(0, 3, 4, 1, 2)
        return objectness, deltas


def warp_regions(images: torch.Tensor, rois: torch.Tensor, size: int) -> torch.Tensor:
    """R-CNN's warp: each region ``(image, x1, y1, x2, y2)`` of ``rois (R, 5)`` (pixels) cut out
    of ``images (B, C, H, W)`` and resized to ``(R, C, size, size)`` by bilinear sampling,
    whatever its aspect ratio. One affine sampling grid a region
    (:func:`torch.nn.functional.affine_grid`, ``align_corners=False``: pixel ``(r, c)`` covers
    ``[c, c + 1) x [r, r + 1)``, as :mod:`cnnlab.ops.boxes` has it).

    Note: R-CNN first pads each region with 16 pixels of context; here the box is warped as is.
    """
    _, _, height, width = images.shape
    x1, y1, x2, y2 = rois[:, 1:].unbind(1)
    theta = torch.zeros(len(rois), 2, 3, dtype=images.dtype, device=images.device)
    theta[:, 0, 0] = (x2 - x1) / width
    theta[:, 0, 2] = (x1 + x2) / width - 1
    theta[:, 1, 1] = (y2 - y1) / height
    theta[:, 1, 2] = (y1 + y2) / height - 1
    grid = F.affine_grid(theta, [len(rois), images.shape[1], size, size], align_corners=False)
    return F.grid_sample(images[rois[:, 0].long()], grid, align_corners=False)
