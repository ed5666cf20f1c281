"""Training options: one TrainConfig field per CLI option, recipes chosen by device, epoch cap."""

from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from training.config import CPU_NET, GPU_RECIPE, TrainConfig, add_arguments, config_from_args, recipe_config


def _parse(argv: list[str], cuda: bool = False) -> TrainConfig:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return config_from_args(parser.parse_args(argv), cuda_available=cuda)


def test_every_field_is_an_option_with_help():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    dests = {action.dest: action for action in parser._actions}
    for f in fields(TrainConfig):
        assert f.name in dests and dests[f.name].help, f.name


def test_a_command_takes_some_fields_with_defaults_of_its_own():
    parser = argparse.ArgumentParser()
    add_arguments(parser, ("lr", "epochs"), own={"lr": {"default": None, "default_help": "half the run's"}})
    lr = next(action for action in parser._actions if action.dest == "lr")
    assert {action.dest for action in parser._actions} == {"help", "lr", "epochs"}
    assert lr.help == "peak AdamW learning rate (default half the run's)"
    assert vars(parser.parse_args([])) == {"lr": None}  # epochs keeps the recipe's: not in the namespace
    assert vars(parser.parse_args(["--lr", "0.01", "--epochs", "3"])) == {"lr": 0.01, "epochs": 3}


def test_no_options_give_the_recipe_of_the_device():
    assert _parse([]) == TrainConfig(recipe="cpu")
    gpu = _parse([], cuda=True)
    assert gpu.recipe == "gpu" and gpu.arch == GPU_RECIPE["arch"] and gpu.size == GPU_RECIPE["size"]
    assert gpu.tier2 == TrainConfig().tier2  # what the recipe does not set stays the shared default
    assert _parse(["--recipe", "cpu"], cuda=True) == TrainConfig(recipe="cpu")


def test_options_override_the_recipe_and_map_onto_fields():
    config = _parse(["--size", "96", "--width", "8", "--stalled-share", "0", "--no-mask-channel",
                     "--time-budget", "2.5", "--init", "w.pt", "--elastic", "0.1", "--tier2", "off"], cuda=True)
    assert (config.recipe, config.arch, config.size) == ("gpu", GPU_RECIPE["arch"], 96)
    assert config.model_kwargs == {"width": 8} and config.stalled_share is None and not config.mask_channel
    assert (config.time_budget_min, config.init_checkpoint, config.elastic_prob) == (2.5, "w.pt", 0.1)
    assert config.tier2 == "off"


def test_the_cpu_network_options_go_with_plain3d_only():
    assert _parse([]).model_kwargs == CPU_NET  # the four-block plain3d
    assert _parse(["--width", "8"]).model_kwargs == CPU_NET | {"width": 8}  # widened, still four blocks
    assert _parse(["--arch", "slim3d"]).model_kwargs == {}  # another network keeps its own defaults
    assert _parse(["--arch", "plain3d"], cuda=True).model_kwargs == CPU_NET


def test_a_run_without_network_options_builds_the_three_block_plain3d():
    from core.model.nets import create_model

    assert len(create_model("plain3d", **_parse([]).model_kwargs).features) == 4
    assert len(create_model("plain3d").features) == 3  # runs made before the fourth block saved {}


def test_epoch_cap_leaves_no_budget_unused():
    assert TrainConfig().planned_epochs() == 12
    assert TrainConfig(time_budget_min=5).planned_epochs() > 1000  # the budget decides
    assert TrainConfig(time_budget_min=5, epochs=3).planned_epochs() == 3  # unless a cap is asked for


def test_unknown_recipe_is_refused():
    with pytest.raises(ValueError, match="recipe must be one of"):
        recipe_config("tpu")


def test_outline_pooling_goes_with_the_mask_channel():
    assert TrainConfig().outline_pool and TrainConfig().focus_depth
    assert not _parse(["--no-mask-channel"]).outline_pool  # nothing to pool inside without the outline
    assert not _parse(["--no-outline-pool"]).outline_pool and _parse(["--no-outline-pool"]).mask_channel


@pytest.mark.parametrize("value", ["0", "1", "5", "abc"])
def test_a_teacher_share_outside_zero_to_one_is_refused_by_name(value, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--teacher-share", value])
    assert "--teacher-share" in capsys.readouterr().err
