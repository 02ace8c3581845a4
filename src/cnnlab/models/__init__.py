"""Model families; importing this package registers every model."""

from cnnlab.models import lenet

__all__ = ["lenet"]
