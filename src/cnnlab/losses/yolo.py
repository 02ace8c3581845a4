"""The YOLO loss: coordinate, objectness, no-object and class terms.

For the anchors responsible for an object (:func:`cnnlab.ops.anchors.assign_targets`):

* coordinates: ``lambda_coord * [(sigmoid(t_x) - t_x*)^2 + (sigmoid(t_y) - t_y*)^2 +
  (t_w - t_w*)^2 + (t_h - t_h*)^2]``: YOLOv1's ``lambda_coord = 5`` on YOLOv2's parametrisation
  (log-scale widths make the error scale-free, the role of v1's square roots);
* objectness: binary cross-entropy towards 1;
* class: softmax cross-entropy (YOLOv1 used squared error on probabilities);

and for every other anchor, no-object: ``lambda_noobj = 0.5`` times the binary cross-entropy
towards 0, except anchors whose predicted box already overlaps a true box with IoU > 0.6, which
are ignored (YOLOv2/v3), so good but unassigned predictions are not punished. The sum is divided
by the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cnnlab.ops.anchors import YoloTargets, decode_boxes
from cnnlab.ops.boxes import box_iou


@dataclass
class YoloLoss:
    """Callable ``loss(pred, targets, true_boxes) -> (total, parts)``."""

    lambda_coord: float = 5.0
    lambda_noobj: float = 0.5
    ignore_iou: float = 0.6

    def __call__(
        self,
        pred: torch.Tensor,
        targets: YoloTargets,
        anchors: torch.Tensor,
        true_boxes: list[torch.Tensor],
    ) -> tuple[torch.Tensor, dict[str, float]]:
        b = pred.shape[0]
        r = targets.responsible.to(pred.device)
        obj_logit = pred[..., 0]
        raw_xy, raw_hw = pred[..., 1:3], pred[..., 3:5]
        raw_wh = raw_hw.flip(-1)  # slide order is b_h, b_w
        coord = ((torch.sigmoid(raw_xy[r]) - targets.txy.to(pred.device)[r]) ** 2).sum() + (
            (raw_wh[r] - targets.twh.to(pred.device)[r]) ** 2
        ).sum()
        obj = F.binary_cross_entropy_with_logits(
            obj_logit[r], torch.ones_like(obj_logit[r]), reduction="sum"
        )
        cls = F.cross_entropy(pred[..., 5:][r], targets.labels.to(pred.device)[r], reduction="sum")
        with torch.no_grad():
            boxes = decode_boxes(raw_xy, raw_wh, anchors)
            ignore = torch.zeros_like(r)
            for n, gt in enumerate(true_boxes):
                if len(gt):
                    best = box_iou(boxes[n].reshape(-1, 4), gt.to(pred.device)).max(1).values
                    ignore[n] = (best > self.ignore_iou).view(ignore[n].shape)
        noobj_mask = ~r & ~ignore
        noobj = F.binary_cross_entropy_with_logits(
            obj_logit[noobj_mask], torch.zeros_like(obj_logit[noobj_mask]), reduction="sum"
        )
        total = (self.lambda_coord * coord + obj + self.lambda_noobj * noobj + cls) / b
        parts = {
            "coord": coord.item() / b,
            "obj": obj.item() / b,
            "noobj": noobj.item() / b,
            "class": cls.item() / b,
        }
        return total, parts
