"""Architecture registry: a name gives a 3D network that maps stacks to one logit.

Every network is a :class:`Net3D`: a convolutional ``features`` trunk (MONAI's DenseNet121 and
ResNets for the winners' recipes, or the compact ``slim3d`` for CPUs) followed by a head that
averages the feature map over the valid (non-padded) depth (and, with ``max_pool``, also takes
each feature's peak) and applies one linear layer. Input is
``(B, 1, D, H, W)`` float; the optional ``depth_mask`` ``(B, D)`` marks real slices (1) vs
zero padding (0), so stacks of different depth can share a batch without the padding diluting
the pooled features. Every constructor takes ``in_channels`` (1: the stack; 2: the stack and its
outline mask, see :class:`core.model.preprocess.InputSpec`).

``create_model(name, checkpoint=...)`` also accepts a 2D ImageNet-style state dict (torchvision
or timm DenseNet121 / ResNet) and inflates it to 3D as the Clog Loss winner did: each 2D kernel is
repeated along depth and divided by the depth, RGB input kernels are summed to one channel.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from monai.networks import nets
from torch import nn

log = logging.getLogger(__name__)

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a constructor under its function name (decorator)."""
    if fn.__name__ in _REGISTRY:
        raise ValueError(f"model {fn.__name__!r} is registered twice")
    _REGISTRY[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    return sorted(_REGISTRY)


class Net3D(nn.Module):
    """A 3D trunk plus a depth-masked global-average-pool head giving one logit per stack.

    Parameters
    ----------
    features
        Module mapping ``(B, 1, D, H, W)`` to a feature map ``(B, C, d, h, w)``.
    channels
        ``C``, the trunk's output channels.
    dropout
        Dropout before the linear layer.
    min_depth
        Inputs with fewer slices are zero-padded (and masked) to this depth first; DenseNet121's
        five halvings need 32.
    max_pool
        Also pass each feature's largest value over the outline and the real slices to the linear
        layer (the trunk must end in a ReLU: cells left out count as 0).

    ``outline_pool`` (set by :func:`create_model`) pools space inside the outline: the second input
    channel (the outline mask, see :class:`core.model.preprocess.InputSpec`) weights the feature map,
    so vessels crossing the ROI outside the outline do not dilute the outlined vessel's features.
    """

    def __init__(self, features: nn.Module, channels: int, dropout: float = 0.0, min_depth: int = 1,
                 max_pool: bool = False) -> None:
        super().__init__()
        self.features = features
        self.min_depth = min_depth
        self.max_pool = max_pool
        self.outline_pool = False
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels * (2 if max_pool else 1), 1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The trunk's feature map ``(B, C, d, h, w)`` (for embeddings and saliency)."""
        return self.features(x)

    def forward_head(self, fmap: torch.Tensor, depth_mask: torch.Tensor | None = None,
                     region: torch.Tensor | None = None) -> torch.Tensor:
        """Pool ``fmap`` over valid depth and space (weighted by ``region`` ``(B, 1, D, H, W)`` in [0, 1]
        when given), return logits ``(B, 1)``."""
        space = fmap.new_ones(1, 1, *fmap.shape[2:])
        if region is None:
            pooled = fmap.mean(dim=(3, 4))  # (B, C, d)
        else:
            space = F.adaptive_avg_pool3d(region.to(fmap.dtype), fmap.shape[2:]) + 1e-3  # never empty
            pooled = (fmap * space).sum(dim=(3, 4)) / space.sum(dim=(3, 4))
        depth = fmap.new_ones(1, 1, fmap.shape[2])
        if depth_mask is None:
            vec = pooled.mean(dim=2)
        else:
            depth = F.adaptive_avg_pool1d(depth_mask[:, None].to(pooled.dtype), pooled.shape[2])
            vec = (pooled * depth).sum(dim=2) / depth.sum(dim=2).clamp_min(1e-6)
        if self.max_pool:
            vec = torch.cat([vec, _peak(fmap, space * depth[..., None, None])], dim=1)
        return self.head(self.dropout(vec))

    def forward(self, x: torch.Tensor, depth_mask: torch.Tensor | None = None) -> torch.Tensor:
        missing = self.min_depth - x.shape[2]
        if missing > 0:
            if depth_mask is None:
                depth_mask = x.new_ones(x.shape[0], x.shape[2])
            x = F.pad(x, (0, 0, 0, 0, 0, missing))
            depth_mask = F.pad(depth_mask, (0, missing))
        region = x[:, 1:2] if self.outline_pool and x.shape[1] > 1 else None
        return self.forward_head(self.forward_features(x), depth_mask, region)


def _peak(fmap: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Largest feature ``(B, C)`` over the cells of ``fmap`` that are mostly inside the outline and
    the real slices (``weight`` > 0.5; every cell when none is). For trunks ending in a ReLU: a cell
    left out counts as 0."""
    keep = (weight > 0.5).to(fmap.dtype)
    keep = torch.where(keep.flatten(1).any(dim=1)[:, None, None, None, None], keep, torch.ones_like(keep))
    return (fmap * keep).amax(dim=(2, 3, 4))


class _Conv2Plus1d(nn.Sequential):
    """A (2+1)D convolution: spatial 1×k×k, then depth k×1×1 (R(2+1)D, Tran et al. 2018)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        mid = max(cout, 8)
        super().__init__(
            nn.Conv3d(cin, mid, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False),
            nn.BatchNorm3d(mid), nn.ReLU(inplace=True),
            nn.Conv3d(mid, cout, (3, 1, 1), stride=(stride, 1, 1), padding=(1, 0, 0), bias=False))


class _Block2Plus1d(nn.Module):
    """Residual block of two (2+1)D convolutions; a strided 1×1×1 projection when shapes change."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_Conv2Plus1d(cin, cout, stride), nn.BatchNorm3d(cout), nn.ReLU(inplace=True),
                                  _Conv2Plus1d(cout, cout), nn.BatchNorm3d(cout))
        self.skip = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv3d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm3d(cout))
        nn.init.zeros_(self.body[-1].weight)  # each block starts as the identity: stable early training

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.skip(x), inplace=True)


def _slim_trunk(width: int, stages: tuple[int, ...], in_channels: int) -> tuple[nn.Module, int]:
    # The stem keeps full depth resolution: the stalled/flowing cue is how dark blobs change from
    # one slice to the next, so depth is only downsampled once the features describe that change.
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        stem=nn.Sequential(nn.Conv3d(in_channels, width, (3, 5, 5), stride=(1, 2, 2), padding=(1, 2, 2), bias=False),
                           nn.BatchNorm3d(width), nn.ReLU(inplace=True)))
    cin = width
    for i, blocks in enumerate(stages):
        cout = width * 2 ** i
        layers[f"stage{i + 1}"] = nn.Sequential(
            *[_Block2Plus1d(cin if b == 0 else cout, cout, 2 if (b == 0 and i > 0) else 1) for b in range(blocks)])
        cin = cout
    return nn.Sequential(layers), cin


@register_model
def slim3d(width: int = 12, stages: tuple[int, ...] = (1, 1, 1, 1), dropout: float = 0.2,
           in_channels: int = 1) -> Net3D:
    """Compact residual (2+1)D CNN (≈ 0.2 M parameters at width 12)."""
    trunk, channels = _slim_trunk(width, tuple(stages), in_channels)
    return Net3D(trunk, channels, dropout)


def _plain_trunk(width: int, stages: int, in_channels: int) -> tuple[nn.Module, int]:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    cin = in_channels
    for i in range(stages):
        cout = width * 2 ** i
        layers[f"block{i + 1}"] = nn.Sequential(nn.Conv3d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm3d(cout),
                                                nn.ReLU(inplace=True), nn.MaxPool3d(2, ceil_mode=True))
        cin = cout
    return nn.Sequential(layers), cin


@register_model
def plain3d(width: int = 16, stages: int = 3, dropout: float = 0.0, in_channels: int = 1,
            max_pool: bool = False) -> Net3D:
    """VGG-style 3D CNN: ``stages`` × (3×3×3 conv, batch norm, ReLU, 2×2×2 max-pool); tiny and quick to learn.
    ``max_pool`` adds each feature's peak inside the outline to its mean (a stall in part of the segment)."""
    trunk, channels = _plain_trunk(width, stages, in_channels)
    return Net3D(trunk, channels, dropout, max_pool=max_pool)


@register_model
def densenet121_3d(dropout: float = 0.0, in_channels: int = 1) -> Net3D:
    """MONAI DenseNet121 in 3D (the 1st-place network)."""
    net = nets.DenseNet121(spatial_dims=3, in_channels=in_channels, out_channels=1)
    features = nn.Sequential(OrderedDict(features=net.features, relu=nn.ReLU(inplace=True)))
    return Net3D(features, net.class_layers.out.in_features, dropout, min_depth=32)


def _monai_resnet(depth: int, dropout: float, in_channels: int) -> Net3D:
    net = getattr(nets, f"resnet{depth}")(spatial_dims=3, n_input_channels=in_channels, num_classes=1)
    parts = ["conv1", "bn1", "act", "maxpool", "layer1", "layer2", "layer3", "layer4"]
    features = nn.Sequential(OrderedDict((p, getattr(net, p)) for p in parts))
    return Net3D(features, net.fc.in_features, dropout)


@register_model
def resnet18_3d(dropout: float = 0.0, in_channels: int = 1) -> Net3D:
    """MONAI ResNet-18 in 3D."""
    return _monai_resnet(18, dropout, in_channels)


@register_model
def resnet34_3d(dropout: float = 0.0, in_channels: int = 1) -> Net3D:
    """MONAI ResNet-34 in 3D."""
    return _monai_resnet(34, dropout, in_channels)


@register_model
def resnet50_3d(dropout: float = 0.0, in_channels: int = 1) -> Net3D:
    """MONAI ResNet-50 in 3D."""
    return _monai_resnet(50, dropout, in_channels)


@register_model
def resnet101_3d(dropout: float = 0.0, in_channels: int = 1) -> Net3D:
    """MONAI ResNet-101 in 3D (the 2nd-place network)."""
    return _monai_resnet(101, dropout, in_channels)


def create_model(name: str, checkpoint: str | Path | None = None, *, outline_pool: bool = False,
                 **kwargs) -> Net3D:
    """Build the registered network ``name``; optionally initialise it from a local checkpoint.

    Parameters
    ----------
    name
        A name from :func:`list_models`.
    checkpoint
        Path to a state dict saved with ``torch.save``: either one of ours (loaded strictly), a
        dict holding it under ``"model"`` or ``"state_dict"``, or a 2D ImageNet-style state dict,
        which is inflated to 3D (see :func:`inflate_2d_state_dict`).
    outline_pool
        Pool space inside the outline (the second input channel) instead of over the whole ROI.
    **kwargs
        Passed to the constructor (e.g. ``width`` for ``slim3d``).

    Raises
    ------
    KeyError
        If ``name`` is not registered.
    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    model = _REGISTRY[name](**kwargs)
    model.outline_pool = outline_pool
    if checkpoint is not None:
        load_weights(model, checkpoint)
    return model


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load weights from ``path`` into ``model``, inflating 2D kernels when the file is 2D."""
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    own = model.state_dict()
    if own.keys() == state.keys():
        model.load_state_dict(state)
        return
    inflated = inflate_2d_state_dict(state, own)
    if len(inflated) < len(own) // 2:
        raise ValueError(f"{path}: only {len(inflated)} of {len(own)} tensors match "
                         f"{type(model).__name__}; is it a checkpoint for this architecture?")
    own.update(inflated)
    model.load_state_dict(own)
    log.info("%s: inflated %d of %d tensors from a 2D checkpoint", path, len(inflated), len(own))


_DENSE_OLD = re.compile(r"^(.*denselayer\d+)\.(norm|relu|conv)\.?([12])\.(weight|bias|running_mean|running_var)$")


def _candidate_keys(key: str) -> list[str]:
    key = _DENSE_OLD.sub(r"\1.layers.\2\3.\4", key)
    return [key, f"features.{key}"]


def inflate_2d_state_dict(state: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a 2D state dict onto a 3D model's state dict ``target``.

    Matching is by name (trying torchvision's and timm's DenseNet layer names and a ``features.``
    prefix). A 2D kernel ``(O, I, h, w)`` becomes ``(O, I', d, h, w)``: repeated ``d`` times along
    depth and divided by ``d`` (so a depth-constant input gives the 2D response), with the input
    channels summed into the first input channel when the 3D layer takes fewer than the 2D one
    (further input channels, such as the outline mask, start at zero). Tensors whose
    shapes still differ (the 1000-class classifier) are skipped.

    Returns
    -------
    dict
        The inflated tensors, keyed by the 3D model's names.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = next((k for k in _candidate_keys(key) if k in target), None)
        if name is None:
            continue
        want = target[name]
        if value.dim() == 4 and want.dim() == 5:
            if value.shape[1] != want.shape[1] and want.shape[1] < value.shape[1]:
                summed = value.sum(dim=1, keepdim=True)
                value = torch.cat([summed, summed.new_zeros(summed.shape[0], want.shape[1] - 1, *summed.shape[2:])], 1)
            depth = want.shape[2]
            value = value[:, :, None].repeat(1, 1, depth, 1, 1) / depth
        if value.shape == want.shape:
            out[name] = value.to(want.dtype)
    return out
