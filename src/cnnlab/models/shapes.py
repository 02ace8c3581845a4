"""Building a model for its shapes only: parameter counts, MACs, the sizes its layers produce.

Under ``torch.device("meta")`` a model's tensors take no memory, but every layer's random
initialisation still runs, through PyTorch's Python reference kernels (``normal_`` on a meta
tensor: about 3 ms a call, 2,256 calls for the model zoo). :func:`shapes_only` skips those
in-place fills as well; on the meta device they have no values to fill."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

# what torch.nn.init and the layers' reset_parameters() fill weights with, in place
_FILLS = frozenset(
    {torch.Tensor.normal_, torch.Tensor.uniform_, torch.Tensor.fill_, torch.Tensor.zero_}
)


def _is_init(func: Any) -> bool:
    """One of ``torch.nn.init``'s in-place fills (``kaiming_uniform_``...): the mode sees the
    call itself, not the tensor methods it runs, so it skips it as a whole."""
    return getattr(func, "__module__", "") == "torch.nn.init" and func.__name__.endswith("_")


class _SkipMetaFills(TorchFunctionMode):
    """Return a meta tensor's in-place random (or constant) fill unchanged, without running it."""

    def __torch_function__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        if (func in _FILLS or _is_init(func)) and args and getattr(args[0], "is_meta", False):
            return args[0]
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def shapes_only() -> Iterator[None]:
    """Modules and tensors made inside are on the meta device, uninitialised: shapes, parameter
    counts and MACs are exact, no memory is taken and no weights are drawn."""
    with torch.device("meta"), _SkipMetaFills():
        yield
