"""core.model.nets: the registry, output shapes, depth masking and 2D → 3D inflation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.model.nets import create_model, inflate_2d_state_dict, list_models

CASES = [  # (name, kwargs, input shape, output shape)
    ("slim3d", {}, (2, 1, 32, 64, 64), (2, 1)),
    ("slim3d", {"width": 8, "stages": (1, 1, 1)}, (3, 1, 8, 16, 16), (3, 1)),
    ("slim3d", {}, (1, 1, 24, 40, 56), (1, 1)),
    ("plain3d", {}, (2, 1, 32, 32, 32), (2, 1)),
    ("plain3d", {"width": 8, "stages": 4}, (1, 1, 13, 20, 20), (1, 1)),
    ("plain3d", {"in_channels": 2}, (2, 2, 16, 32, 32), (2, 1)),  # stack + outline mask
    ("slim3d", {"width": 8, "in_channels": 2}, (1, 2, 8, 16, 16), (1, 1)),
    ("resnet18_3d", {"in_channels": 2}, (1, 2, 8, 16, 16), (1, 1)),
    ("densenet121_3d", {}, (1, 1, 16, 64, 64), (1, 1)),  # padded to its minimum depth of 32
    ("resnet18_3d", {}, (2, 1, 16, 32, 32), (2, 1)),
    ("resnet34_3d", {}, (1, 1, 16, 32, 32), (1, 1)),
    pytest.param("resnet50_3d", {}, (1, 1, 8, 16, 16), (1, 1), marks=pytest.mark.slow),
    pytest.param("resnet101_3d", {}, (1, 1, 8, 16, 16), (1, 1), marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("name", "kwargs", "shape", "out"), CASES)
def test_output_shape(name, kwargs, shape, out):
    model = create_model(name, **kwargs).eval()
    with torch.no_grad():
        assert model(torch.randn(shape)).shape == out
        assert model(torch.randn(shape), torch.ones(shape[0], shape[2])).shape == out


def test_unknown_name_fails_loudly():
    with pytest.raises(KeyError, match="unknown model 'nope'.*slim3d"):
        create_model("nope")


def test_registry_lists_the_winners_networks():
    assert {"slim3d", "plain3d", "densenet121_3d", "resnet18_3d", "resnet34_3d", "resnet50_3d", "resnet101_3d"} <= set(list_models())


def test_depth_mask_ignores_padding():
    torch.manual_seed(0)
    model = create_model("slim3d", width=8).eval()
    x = torch.randn(1, 1, 16, 32, 32)
    padded = torch.cat([x, torch.zeros(1, 1, 16, 32, 32)], dim=2)
    mask = torch.cat([torch.ones(1, 16), torch.zeros(1, 16)], dim=1)
    with torch.no_grad():
        plain, masked, unmasked = model(x), model(padded, mask), model(padded)
    # the pooled features see only the real slices (up to receptive-field bleed at the boundary)
    assert (masked - plain).abs().item() < (unmasked - plain).abs().item()


def test_outline_pool_pools_inside_the_outline_only():
    model = create_model("plain3d", width=4, stages=1, in_channels=2, outline_pool=True).eval()
    fmap = torch.zeros(1, 4, 2, 4, 4)
    fmap[..., :, :2] = 1.0  # features: 1 in the left half of the slice, 0 in the right half
    left = torch.zeros(1, 1, 2, 4, 4)
    left[..., :, :2] = 1.0
    with torch.no_grad():
        inside = model.forward_head(fmap, region=left) - model.head.bias
        everywhere = model.forward_head(fmap) - model.head.bias
    weights = model.head.weight.sum()
    assert torch.allclose(inside, weights * torch.tensor(1.0), atol=1e-2)  # only the outlined half counts
    assert torch.allclose(everywhere, weights * torch.tensor(0.5), atol=1e-5)  # the plain ROI mean
    x = torch.randn(1, 2, 8, 8, 8)
    with torch.no_grad():
        assert model(x).shape == (1, 1)


def test_checkpoint_round_trip(tmp_path):
    model = create_model("slim3d", width=8)
    torch.save({"model": model.state_dict()}, tmp_path / "w.pth")
    loaded = create_model("slim3d", width=8, checkpoint=tmp_path / "w.pth")
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


def _resnet18_2d_state() -> dict[str, torch.Tensor]:
    """A torchvision-style 2D ResNet-18 state dict (RGB input, 1000 classes), built from MONAI's 2D net."""
    from monai.networks.nets import resnet18

    return resnet18(spatial_dims=2, n_input_channels=3, num_classes=1000).state_dict()


def test_inflates_a_2d_imagenet_checkpoint(tmp_path):
    state = _resnet18_2d_state()
    torch.save(state, tmp_path / "resnet18_2d.pth")
    model = create_model("resnet18_3d", checkpoint=tmp_path / "resnet18_2d.pth")
    conv = model.state_dict()["features.conv1.weight"]  # (64, 1, 7, 7, 7)
    expected = state["conv1.weight"].sum(dim=1, keepdim=True) / conv.shape[2]
    assert torch.allclose(conv[:, :, 3], expected[:, :, ...])
    assert torch.allclose(conv[:, :, 0], conv[:, :, 6])
    bn = model.state_dict()["features.layer2.0.bn1.running_var"]
    assert torch.equal(bn, state["layer2.0.bn1.running_var"])


def test_inflation_maps_torchvision_densenet_names():
    target = create_model("densenet121_3d").state_dict()
    old_style = {"features.denseblock1.denselayer1.norm.1.weight": torch.full((64,), 2.0),
                 "features.denseblock1.denselayer1.conv.1.weight": torch.ones(128, 64, 1, 1)}
    out = inflate_2d_state_dict(old_style, target)
    assert torch.equal(out["features.features.denseblock1.denselayer1.layers.norm1.weight"], torch.full((64,), 2.0))
    assert out["features.features.denseblock1.denselayer1.layers.conv1.weight"].shape == (128, 64, 1, 1, 1)


def test_wrong_architecture_checkpoint_is_refused(tmp_path):
    torch.save(nn.Linear(3, 2).state_dict(), tmp_path / "other.pth")
    with pytest.raises(ValueError, match="only 0 of .* tensors match"):
        create_model("slim3d", checkpoint=tmp_path / "other.pth")


def test_max_pool_adds_the_peak_inside_the_outline_and_the_real_slices():
    model = create_model("plain3d", width=1, stages=1, in_channels=2, outline_pool=True, max_pool=True).eval()
    assert model.head.in_features == 2  # mean and peak of the one channel
    fmap = torch.zeros(1, 1, 4, 4, 4)
    fmap[0, 0, 1, 0, 0] = 3.0  # a stall-like peak inside the outline, in a real slice
    fmap[0, 0, 1, 3, 3] = 9.0  # brighter, but outside the outline
    fmap[0, 0, 3, 0, 0] = 7.0  # inside the outline, but in a padded slice
    outline = torch.zeros(1, 1, 4, 4, 4)
    outline[..., :2, :2] = 1.0
    slices = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    with torch.no_grad():
        model.head.weight.copy_(torch.tensor([[0.0, 1.0]]))  # read the peak alone
        model.head.bias.zero_()
        assert model.forward_head(fmap, slices, outline).item() == pytest.approx(3.0)
        assert model.forward_head(fmap).item() == pytest.approx(9.0)  # no outline, no mask: the whole map
        assert model.forward_head(fmap, slices, torch.zeros_like(outline)).item() == pytest.approx(9.0)  # empty outline
