"""cnnlab: the ideas of a convolutional-neural-network course, implemented for real and fast."""

from cnnlab.registry import create_model, list_models, register_model

__version__ = "0.1.0"

__all__ = ["__version__", "create_model", "list_models", "register_model"]
