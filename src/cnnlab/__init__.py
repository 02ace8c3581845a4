"""cnnlab: the ideas of a convolutional-neural-network course, implemented for real and fast.

The names a notebook needs first are here: the model registry, and (imported on first use, so
``import cnnlab`` stays light) each task's settings and training function, the trained
predictors (classifier, localizer, detector, segmenter, face encoder), and the error every bad
input raises::

    import cnnlab

    result = cnnlab.train_classifier(cnnlab.ClassifyTrainConfig(epochs=5))
    clf = cnnlab.Classifier.load(result.run_dir / "best.pt")
"""

from __future__ import annotations

import importlib
from typing import Any

from cnnlab.registry import create_model, list_models, register_model

__version__ = "0.1.0"

# name -> the module that defines it (imported when the name is first used)
_LAZY = {
    "CnnlabError": "cnnlab.errors",
    "ClassifyTrainConfig": "cnnlab.config",
    "LocalizeConfig": "cnnlab.config",
    "DetectConfig": "cnnlab.config",
    "SegmentConfig": "cnnlab.config",
    "FacesConfig": "cnnlab.config",
    "train_classifier": "cnnlab.engine.classify",
    "train_localizer": "cnnlab.engine.localize",
    "train_detector": "cnnlab.engine.detect",
    "train_segmenter": "cnnlab.engine.segment",
    "train_faces": "cnnlab.engine.faces",
    "transfer_style": "cnnlab.engine.style",
    "Classifier": "cnnlab.engine.predict",
    "FaceEncoder": "cnnlab.engine.recognition",
    "Localizer": "cnnlab.engine.localize",
    "Detector": "cnnlab.engine.detect",
    "Segmenter": "cnnlab.engine.segment_maps",
}

__all__ = ["__version__", "create_model", "list_models", "register_model", *_LAZY]


def __getattr__(name: str) -> Any:
    """``cnnlab.Classifier`` and the other names of :data:`_LAZY`, imported on first use."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # the next use is a plain attribute
        return value
    raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
