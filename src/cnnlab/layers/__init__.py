"""Blocks shared by two or more model families."""

from cnnlab.layers.blocks import ConvBNAct, DropPath, SqueezeExcite, make_divisible

__all__ = ["ConvBNAct", "DropPath", "SqueezeExcite", "make_divisible"]
