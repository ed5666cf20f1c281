"""Training options: one dataclass, saved as the run's ``config.json``, that also defines the CLI.

Each option is written once: a :class:`TrainConfig` field whose metadata holds its command-line
help (and, where it differs from ``--field-name``, its flag and how the flag's value maps onto the
field). ``stalltriage train`` builds its options from these fields with :func:`add_arguments` and
reads them back with :func:`config_from_args`; ``stalltriage retrain`` takes the few it lets change
from the same fields.

Two recipes share the fields' defaults: the CPU recipe (the dataclass defaults) and the GPU recipe
(:data:`GPU_RECIPE` on top of them: the winners' full-size networks with AMP). An option given on
the command line overrides the recipe; ``--recipe auto`` picks the recipe for the device found.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from core.model.preprocess import InputSpec

# Options that shape the result: a rerun into an existing run directory must not change them.
IDENTITY_FIELDS = ("recipe", "arch", "model_kwargs", "init_checkpoint", "folds", "epochs", "batch_size", "lr",
                   "weight_decay", "warmup_epochs", "loss", "focal_gamma", "stalled_share", "soft_labels",
                   "tier2", "tier2_cut", "size", "max_depth", "focus_depth", "vessel", "mask_channel",
                   "outline_pool", "elastic_prob", "snapshots", "tta", "seed", "warm_start", "unlabelled",
                   "teacher_share")
RECIPES = ("auto", "cpu", "gpu")
# The winners' full-size recipe (1st/2nd place: DenseNet121 / ResNet-101 at 112-160 px), sized for one GPU.
GPU_RECIPE = {"folds": 5, "arch": "resnet34_3d", "size": 128, "max_depth": 64, "batch_size": 8, "lr": 3e-4,
              "weight_decay": 0.05, "epochs": 30, "elastic_prob": 0.2, "tta": 4, "workers": 6}
# The CPU recipe's network: plain3d with a fourth block (on a 4 x 8 x 2 map: about 5 % more time per step,
# and better at the same time budget) whose head also reads each feature's peak inside the outline (a stall
# in part of the segment or the depth): docs/benchmarks.md, "Four blocks" and "A peak beside the mean".
# Runs made before keep their own options (three blocks, mean only).
CPU_NET = {"stages": 4, "max_pool": True}
DEFAULT_EPOCHS = 12  # the cap without a time budget; with one, the budget decides (``epochs`` unset)
UNCAPPED = 10_000  # "no cap": the time budget shortens the schedule to what fits


def _open_share(text: str) -> float:
    """A command-line share strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1 (exclusive)")
    return value


def _opt(default, help: str, **cli):  # noqa: A002 - the argparse word
    """A field with its command-line help; ``cli`` may set ``flag``, ``type``, ``choices``, ``to_field``,
    ``default_help`` (the words after "default" where the default's value does not say it)."""
    meta = {"help": help, **cli}
    if callable(default):
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Everything that defines a training run (defaults: the CPU recipe)."""

    recipe: str = _opt("cpu", "recipe the other defaults come from: auto (gpu on CUDA, else cpu), cpu, gpu",
                       choices=RECIPES, cli_default="auto")
    arch: str = _opt("plain3d", "network (an unknown name lists the known ones)")
    model_kwargs: dict = _opt(lambda: dict(CPU_NET), "channel width of the compact nets (plain3d, slim3d)",
                              flag="--width", type=int, metavar="N", cli_default=None,
                              to_field=lambda v: {} if v is None else {"width": v})
    init_checkpoint: str | None = _opt(None, "initial weights: our checkpoint or a 2D ImageNet state dict "
                                             "(inflated to 3D)", flag="--init", metavar="PATH", type=str)
    warm_start: str | None = _opt(None, "a finished run: each fold starts from its last snapshot and every stack "
                                        "keeps its fold (training.warmstart; what `stalltriage retrain` does)",
                                  metavar="RUN_DIR", type=str)
    folds: int = _opt(3, "cross-validation folds (3 on CPU: each fold gets more of a fixed budget, which "
                         "measured better than 5)")
    epochs: int | None = _opt(None, "epochs per fold, at most", type=int,
                              default_help=f"{DEFAULT_EPOCHS}; with --time-budget, as many as the budget allows")
    batch_size: int = _opt(8, "stacks per training step")
    lr: float = _opt(2e-3, "peak AdamW learning rate")
    weight_decay: float = _opt(0.02, "AdamW weight decay (not on norms and biases)")
    warmup_epochs: float = _opt(0.5, "linear warm-up, in epochs")
    loss: str = _opt("bce", "loss on logits (both accept soft targets)", choices=("bce", "focal"))
    focal_gamma: float = _opt(2.0, "focal loss exponent")
    stalled_share: float | None = _opt(0.25, "share of stalled stacks drawn per epoch (0 = natural share)",
                                       to_field=lambda v: v or None)
    soft_labels: bool = _opt(False, "train tier-1 stacks on their crowd scores too", action="store_true")
    tier2: str = _opt("soft", "non-tier-1 labelled stacks: off (tier 1 only), label (their train_labels label, "
                             "like tier 1), soft (crowd score as target) or cut (stalled if score > --tier2-cut)",
                      choices=("off", "label", "soft", "cut"))
    tier2_cut: float = _opt(0.6, "crowd-score cut of --tier2 cut")
    unlabelled: str = _opt("off", "stacks without an answer (new stacks, held-out ones): off, or pseudo (each fold "
                                  "also trains on those it will not score, on its teacher's probability; the "
                                  "teacher is --warm-start's run or a first stage on the labelled stacks; "
                                  "training.pseudo)", choices=("off", "pseudo"))
    teacher_share: float = _opt(0.4, "with --unlabelled pseudo and no --warm-start: share of the time budget "
                                      "the first stage (the teacher) gets", type=_open_share, metavar="SHARE")
    size: int = _opt(32, "slice height and width after resizing")
    max_depth: int = _opt(32, "slices kept per stack (every k-th slice, never interpolated)")
    focus_depth: bool = _opt(True, "keep the slices where the outlined vessel is in focus (at least --max-depth "
                                   "of them) before striding (core.model.preprocess.focus_range)",
                             action=argparse.BooleanOptionalAction)
    vessel: bool = _opt(True, "straighten the outlined vessel: resample every slice along its centreline "
                              "(2 x --size along, --size / 2 across; core.video.straighten) instead of resizing the ROI",
                        action=argparse.BooleanOptionalAction)
    mask_channel: bool = _opt(True, "give the network the filled outline mask as a second input channel",
                              action=argparse.BooleanOptionalAction)
    outline_pool: bool = _opt(True, "pool the network's features inside the outline (only with the mask channel: "
                                    "--no-mask-channel turns it off too)",
                              action=argparse.BooleanOptionalAction)
    elastic_prob: float = _opt(0.0, "probability of a 3D elastic deformation (slow on CPU)", flag="--elastic")
    snapshots: int = _opt(2, "ensemble members per fold (the last epochs' weights)")
    tta: int = _opt(1, "flip views for out-of-fold scores and, by default, for predict", choices=(1, 2, 4, 8))
    time_budget_min: float | None = _opt(None, "total training minutes, split over the folds; each fold fits "
                                               "its schedule to its share and always leaves its members",
                                         flag="--time-budget", metavar="MIN", type=float)
    device: str = _opt("auto", "auto, cpu, cuda or cuda:N")
    workers: int = _opt(0, "DataLoader worker processes")
    seed: int = _opt(0, "seed of folds, sampling, augmentation and initialisation")

    def __post_init__(self) -> None:
        self.outline_pool = self.outline_pool and self.mask_channel  # the outline is known from the mask channel

    def resolved_device(self) -> torch.device:
        """``auto`` → CUDA when available, else CPU."""
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def input_spec(self) -> InputSpec:
        """The input shape these options describe (saved in the run's ``config.json`` for scoring)."""
        from core.model.preprocess import InputSpec

        return InputSpec(self.size, self.max_depth, self.mask_channel, self.focus_depth, self.vessel)

    def planned_epochs(self) -> int:
        """The epoch cap: ``epochs`` if set, else unbounded under a time budget, else the default."""
        if self.epochs is not None:
            return self.epochs
        return UNCAPPED if self.time_budget_min is not None else DEFAULT_EPOCHS

    def as_dict(self) -> dict:
        return asdict(self)

    def identity(self) -> dict:
        """The options a resumed run must share with the original."""
        return {k: getattr(self, k) for k in IDENTITY_FIELDS}


def _flag(f) -> str:
    return f.metadata.get("flag", "--" + f.name.replace("_", "-"))


def add_arguments(parser: argparse.ArgumentParser, names: Sequence[str] | None = None,
                  own: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """Add one option per :class:`TrainConfig` field (or per field in ``names``).

    Unset options keep the recipe's default: they are left out of the parsed namespace. ``own``
    gives a field's option settings of its own for a command whose defaults are not the recipe's
    (``retrain`` starts from the run's options): argparse keywords such as ``default`` and
    ``type``, and ``default_help``, the words after "default" in the help.
    """
    for f in fields(TrainConfig):
        if names is not None and f.name not in names:
            continue
        mine = dict((own or {}).get(f.name, {}))
        meta = dict(f.metadata)
        kwargs = {k: meta[k] for k in ("choices", "action", "metavar", "type") if k in meta}
        default = f.default if f.default is not MISSING else f.default_factory()
        if "action" not in kwargs and "type" not in kwargs:
            kwargs["type"] = type(default)
        default = meta.get("cli_default", default)
        note = ""
        if default not in (None, {}) and kwargs.get("action") != "store_true":
            gpu = GPU_RECIPE.get(f.name)
            note = f" (default {default}{'' if gpu is None else f'; gpu recipe {gpu}'})"
        default_help = mine.pop("default_help", meta.get("default_help"))
        if default_help is not None:
            note = f" (default {default_help})"
        parser.add_argument(_flag(f), dest=f.name, help=meta["help"] + note,
                            **kwargs | {"default": argparse.SUPPRESS} | mine)


def config_from_args(args: argparse.Namespace, cuda_available: bool | None = None) -> TrainConfig:
    """The :class:`TrainConfig` the parsed options describe: the recipe's defaults plus what was given.

    ``cuda_available`` decides ``--recipe auto`` (default: ask torch).
    """
    given = {}
    for f in fields(TrainConfig):
        if hasattr(args, f.name):
            convert = f.metadata.get("to_field")
            given[f.name] = convert(getattr(args, f.name)) if convert else getattr(args, f.name)
    return recipe_config(given.pop("recipe", "auto"), cuda_available, **given)


def recipe_config(recipe: str = "auto", cuda_available: bool | None = None, **overrides) -> TrainConfig:
    """The named recipe's :class:`TrainConfig` with ``overrides`` applied (``auto``: gpu on CUDA, else cpu)."""
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
    if recipe == "auto":
        if cuda_available is None:
            import torch

            device = overrides.get("device", "auto")
            cuda_available = device.startswith("cuda") or device == "auto" and torch.cuda.is_available()
        recipe = "gpu" if cuda_available else "cpu"
    options = (GPU_RECIPE if recipe == "gpu" else {}) | overrides
    net = CPU_NET if options.get("arch", TrainConfig.arch) == "plain3d" else {}  # another network has its own
    return TrainConfig(**options | {"recipe": recipe, "model_kwargs": net | options.get("model_kwargs", {})})
