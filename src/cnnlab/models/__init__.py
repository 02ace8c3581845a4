"""Model families; importing this package registers every model."""

from cnnlab.models import (
    alexnet,
    convnd,
    efficientnet,
    googlenet,
    heads,
    lenet,
    mobilenet,
    nin,
    overfeat,
    resnet,
    siamese,
    unet,
    vgg,
    yolo,
)

__all__ = [
    "alexnet",
    "convnd",
    "efficientnet",
    "googlenet",
    "heads",
    "lenet",
    "mobilenet",
    "nin",
    "overfeat",
    "resnet",
    "siamese",
    "unet",
    "vgg",
    "yolo",
]

from cnnlab.models.torchvision_weights import load_torchvision_weights

__all__ += ["load_torchvision_weights"]
