"""Siamese networks for faces (Taigman et al., 2014, DeepFace; Schroff et al., 2015, FaceNet).

* :class:`SiameseEncoder`: any registered backbone, global average pooling and a linear layer to
  an L2-normalised embedding ``f(x)`` (128-d by default), optionally whitened after training.
  Both branches of a pair are the same module: the weights are shared by construction.
* :class:`SiameseEnsemble`: several encoders trained apart, their embeddings joined.
* :class:`LearnedSimilarity` (slide "Learning the similarity function"): a logistic unit on
  ``sum_i alpha_i |f1[i] - f2[i]|`` (``form="l1"``) or on the chi-square form
  ``sum_i w_i (f1[i] - f2[i])^2 / (f1[i] + f2[i])`` (``form="chi2"``). The chi-square form
  assumes non-negative features (DeepFace's come after a ReLU); ours can be negative, so the
  denominator is ``|f1[i]| + |f2[i]| + eps``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.backbone import build_backbone
from cnnlab.registry import register_model


class SiameseEncoder(nn.Module):
    """``(B, C, H, W) -> (B, embedding_dim)`` with unit L2 norm."""

    def __init__(
        self,
        backbone: str = "convnet_small",
        *,
        embedding_dim: int = 128,
        in_channels: int = 1,
        input_size: int = 32,
        pool_size: int = 1,
        whiten: bool = False,
    ) -> None:
        super().__init__()
        self.backbone, (channels, *grid) = build_backbone(backbone, in_channels, input_size)
        if pool_size > min(grid):
            raise CnnlabError(
                f"--pool-size {pool_size}: {backbone}'s feature map at {input_size} px is "
                f"{grid[0]}x{grid[1]}; a finer pooled grid would only repeat its cells"
            )
        # pool_size > 1 keeps a coarse spatial layout (where strokes are), which global
        # average pooling throws away
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.embed = nn.Linear(channels * pool_size * pool_size, embedding_dim)
        self.whiten = whiten
        if whiten:  # the identity until fit_whitening: training sees the plain embedding
            self.register_buffer("white_mean", torch.zeros(embedding_dim))
            self.register_buffer("white_proj", torch.eye(embedding_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.pool(self.backbone.forward_features(x)).flatten(1)
        f = F.normalize(self.embed(f), dim=1)
        if self.whiten:
            f = F.normalize((f - self.white_mean) @ self.white_proj, dim=1)
        return f

    @torch.no_grad()
    def fit_whitening(self, embeddings: torch.Tensor, shrink: float = 0.5) -> None:
        """Whiten the embedding on ``embeddings (N, D)`` of many identities (made with the
        whitening still the identity): ``f -> normalize((f - mu) C^(-1/2))`` with the covariance
        shrunk toward its mean variance, ``C = (1 - shrink) Cov + shrink tr(Cov)/D I``
        (PCA whitening of descriptors, Jegou & Chum, ECCV 2012). Directions the training
        identities hardly used get the same say as the rest."""
        if not self.whiten:
            raise ValueError("this encoder was built without whiten=True")
        e = embeddings.double()  # float64: small eigenvalues are taken to the power -1/2
        mu = e.mean(0)
        cov = torch.cov((e - mu).T)
        d = len(cov)
        eye = torch.eye(d, dtype=cov.dtype, device=cov.device)
        cov = (1 - shrink) * cov + shrink * cov.trace() / d * eye
        values, vectors = torch.linalg.eigh(cov)
        proj = vectors @ torch.diag(values.clamp_min(1e-12).rsqrt()) @ vectors.T
        self.white_mean.copy_(mu)
        self.white_proj.copy_(proj)


def squared_distance(f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
    """``d(img1, img2) = ||f(x1) - f(x2)||^2``, row by row."""
    return ((f1 - f2) ** 2).sum(-1)


class LearnedSimilarity(nn.Module):
    """``y_hat = sigmoid(sum_i w_i phi_i(f1, f2) + b)``; returns the logit."""

    def __init__(self, dim: int, form: str = "l1", eps: float = 1e-6) -> None:
        super().__init__()
        if form not in ("l1", "chi2"):
            raise ValueError(f"form must be l1 or chi2, got {form!r}")
        self.form, self.eps = form, eps
        self.linear = nn.Linear(dim, 1)

    def features(self, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        if self.form == "l1":
            return (f1 - f2).abs()
        return (f1 - f2) ** 2 / (f1.abs() + f2.abs() + self.eps)

    def forward(self, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        return self.linear(self.features(f1, f2)).squeeze(-1)


def similarity_record(similarity: LearnedSimilarity, threshold: float) -> dict[str, Any]:
    """What a checkpoint, and an ONNX file's metadata, keep of a trained learned similarity, as
    plain numbers: its ``form``, ``weight`` ``w (D,)``, ``bias`` ``b`` and the logit
    ``threshold`` chosen on held-out pairs (``w . phi(f1, f2) + b >= threshold``: same)."""
    return {
        "form": similarity.form,
        "weight": similarity.linear.weight.detach().cpu().flatten().tolist(),
        "bias": float(similarity.linear.bias.detach()),
        "threshold": float(threshold),
    }


def same_probability(logit: float) -> float:
    """The learned similarity's logit as the probability that a pair is one person,
    ``sigmoid(logit)``: how its scores and threshold are shown."""
    return float(torch.sigmoid(torch.tensor(float(logit), dtype=torch.float64)))


def similarity_from_record(record: dict[str, Any]) -> tuple[LearnedSimilarity, float]:
    """The :class:`LearnedSimilarity` and its logit threshold from :func:`similarity_record`."""
    similarity = LearnedSimilarity(len(record["weight"]), record["form"])
    with torch.no_grad():
        similarity.linear.weight.copy_(torch.tensor(record["weight"]).view(1, -1))
        similarity.linear.bias.fill_(record["bias"])
    return similarity.eval(), float(record["threshold"])


@register_model(
    "siamese",
    input_size=(1, 32, 32),
    task="embedding",
    paper="Taigman et al., 2014 (DeepFace); Schroff et al., 2015 (FaceNet)",
)
def siamese(
    *,
    backbone: str = "convnet_small",
    embedding_dim: int = 128,
    in_channels: int = 1,
    input_size: int = 32,
    pool_size: int = 1,
    whiten: bool = False,
) -> SiameseEncoder:
    """A shared-weight encoder producing L2-normalised embeddings."""
    return SiameseEncoder(
        backbone,
        embedding_dim=embedding_dim,
        in_channels=in_channels,
        input_size=input_size,
        pool_size=pool_size,
        whiten=whiten,
    )


class SiameseEnsemble(nn.Module):
    """``N`` encoders trained apart, one embedding: ``f(x) = [f_1(x), ..., f_N(x)] / sqrt(N)``,
    ``(B, C, H, W) -> (B, N * embedding_dim)`` with unit L2 norm. Each member's output has unit
    norm, so the squared distance is the members' mean, ``d(x1, x2) = (1/N) sum_i d_i(x1, x2)``:
    independent errors of the members average out."""

    def __init__(self, members: list[SiameseEncoder]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([m(x) for m in self.members], 1) / len(self.members) ** 0.5


@register_model(
    "siamese_ensemble",
    input_size=(1, 32, 32),
    task="embedding",
    paper="Hansen & Salamon, 1990 (neural network ensembles); Schroff et al., 2015 (FaceNet)",
)
def siamese_ensemble(
    *,
    members: int = 2,
    backbone: str = "convnet_small",
    embedding_dim: int = 128,
    in_channels: int = 1,
    input_size: int = 32,
    pool_size: int = 1,
    whiten: bool = False,
) -> SiameseEnsemble:
    """``members`` encoders as :func:`siamese` builds them; their weights come from training."""
    return SiameseEnsemble(
        [
            SiameseEncoder(
                backbone,
                embedding_dim=embedding_dim,
                in_channels=in_channels,
                input_size=input_size,
                pool_size=pool_size,
                whiten=whiten,
            )
            for _ in range(members)
        ]
    )
