"""What a synthetic data set looks like: size profiles, per-project appearance, hard cases and the
crowd's answers.

A :class:`Profile` fixes the distributions of stack depth, frame and ROI size and how often the
hard cases and nuisances occur. :func:`sample_spec` draws one stack's :class:`StackSpec` from a
project's appearance (independent of the label, except the cell behaviour in the target, which
*is* the label); :func:`difficulty` scores how hard the stack is to read, and :func:`crowd`
answers with errors (misses and false alarms) that grow with that difficulty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.synth.render import StackSpec

#: Hard cell behaviours and how often they replace plain flow or a full stall (at ``hard_scale`` 1).
FLOWING_HARD = {"slow": 0.10, "sparse": 0.08}
STALLED_HARD = {"partial": 0.12, "stall_depth": 0.10, "plug": 0.08}

#: How much each hard case or nuisance adds to a stack's difficulty (0 easy … 1 a coin toss).
DIFFICULTY = {"slow": 0.55, "sparse": 0.45, "partial": 0.5, "stall_depth": 0.5, "plug": 0.35,
              "low_contrast": 0.55, "few_slices": 0.55, "strong_jitter": 0.35, "static_neighbour": 0.35,
              "neighbour": 0.1, "penetrating_in_roi": 0.1, "blackout": 0.1, "black_slices": 0.05,
              "blank_ends": 0.05, "low_snr": 0.3}


@dataclass(frozen=True)
class Profile:
    """Distributions of stack depth, ROI and frame size (lognormal, clipped), and scales for the
    rate of every hard case and nuisance (``hard_scale``), vessel width (``radius_scale``) and the
    number of other vessels in the frame (``density_scale``).

    ``roi_tail`` is the share of long segments whose ROI is drawn around ``roi_tail_median``.
    """

    depth_median: float
    depth_sigma: float
    depth_range: tuple[int, int]
    roi_median: float
    roi_sigma: float
    roi_range: tuple[int, int]
    roi_tail: float
    roi_tail_median: float
    frame_median: float
    frame_range: tuple[int, int]
    context_range: tuple[int, int]
    hard_scale: float = 1.0
    radius_scale: float = 1.0
    density_scale: float = 1.0


PROFILES = {
    # Like Stall Catchers: depth 10–330 slices (mean ≈ 60, long tail), frames mostly 100–250 px
    # up to ≈ 420, ROI mostly 30–110 px with 3 % long segments up to ≈ 380 px; every hard case.
    "realistic": Profile(50, 0.6, (10, 330), 58, 0.35, (24, 380), 0.03, 160, 150, (64, 420), (8, 40)),
    # Small and fast, for tests: the same phenomena, rarer, at a fraction of the pixels.
    "tiny": Profile(16, 0.2, (12, 24), 36, 0.15, (28, 48), 0.0, 36, 56, (48, 80), (6, 14),
                    hard_scale=0.1, radius_scale=0.6, density_scale=0.4),
}


@dataclass(frozen=True)
class Project:
    """Per-project appearance: microscope settings, dye, animal and region differ between projects."""

    project_id: int
    tissue_level: float
    tissue_texture: float
    lumen_level: float
    shadow_strength: float
    noise_sigma: float
    vessel_radius: float
    vessel_density: float
    frame_scale: float
    outline_thickness: int
    vignette: float
    jitter_prone: float


def make_project(seed: int, project_id: int, profile: Profile) -> Project:
    """Draw the appearance of project ``project_id`` (deterministic in ``seed``)."""
    rng = np.random.default_rng([seed, 1_000_003, project_id])
    return Project(
        project_id=project_id,
        tissue_level=float(rng.uniform(8, 45)),
        tissue_texture=float(rng.uniform(3, 16)),
        lumen_level=float(rng.uniform(100, 210)),
        shadow_strength=float(rng.uniform(0.6, 0.9)),
        noise_sigma=float(rng.uniform(4, 8 + 8 * profile.hard_scale)),
        vessel_radius=float(rng.uniform(2.6, 4.6) * profile.radius_scale),
        vessel_density=float(rng.uniform(0.4, 2.5) * profile.density_scale),
        frame_scale=float(rng.uniform(0.8, 1.25)),
        outline_thickness=int(rng.integers(1, 3)),
        vignette=float(rng.uniform(0.0, 0.6)),
        jitter_prone=float(rng.uniform(0.3, 1.7)),
    )


def _lognormal(rng: np.random.Generator, median: float, sigma: float, bounds: tuple[int, int]) -> int:
    return int(np.clip(round(median * np.exp(sigma * rng.standard_normal())), *bounds))


def _even(n: int) -> int:
    return n + n % 2


def _cell_mode(rng: np.random.Generator, stalled: bool, scale: float) -> str:
    hard = STALLED_HARD if stalled else FLOWING_HARD
    u, edge = rng.random(), 0.0
    for mode, rate in hard.items():
        edge += rate * scale
        if u < edge:
            return mode
    return "stall" if stalled else "flow"


def _geometry(rng: np.random.Generator, project: Project, profile: Profile) -> dict:
    """Depth, frame, ROI, vessel calibre and outline margin of one stack."""
    depth = _lognormal(rng, profile.depth_median, profile.depth_sigma, profile.depth_range)
    long_segment = rng.random() < profile.roi_tail
    roi_h = _lognormal(rng, profile.roi_tail_median if long_segment else profile.roi_median, profile.roi_sigma,
                       profile.roi_range)
    roi_w = int(np.clip(round(roi_h * np.exp(rng.normal(0, 0.25))), *profile.roi_range))
    outline_margin = float(rng.uniform(2.0, 5.0))
    calibre = (max(roi_h, roi_w) / profile.roi_median) ** 0.35 * np.exp(rng.normal(0, 0.15))
    if rng.random() < 0.05 * profile.hard_scale:
        calibre *= rng.uniform(1.5, 2.2)  # a large vessel outlined
    radius = float(np.clip(project.vessel_radius * calibre, 1.5, min(roi_h, roi_w) / 2 - 6 - outline_margin))
    ctx = profile.context_range
    frame = [_even(max(_lognormal(rng, profile.frame_median * project.frame_scale, 0.25, profile.frame_range),
                       side + 2 * ctx[0] + int(rng.integers(0, ctx[1] - ctx[0] + 1))))
             for side in (roi_h, roi_w)]
    roi = (int(rng.integers(ctx[0], frame[0] - roi_h - ctx[0] + 1)),
           int(rng.integers(ctx[0], frame[1] - roi_w - ctx[0] + 1)), roi_h, roi_w)
    return {"depth": depth, "frame_hw": (frame[0], frame[1]), "roi_yxhw": roi, "vessel_radius": radius,
            "outline_margin": outline_margin}


def sample_spec(rng: np.random.Generator, render_seed: tuple[int, ...], project: Project, profile: Profile,
                stalled: bool) -> tuple[StackSpec, tuple[str, ...]]:
    """Draw one stack's spec and the names of the hard cases and nuisances it holds.

    Only ``cell_mode`` depends on ``stalled``; sizes, appearance and nuisances are drawn the same
    way for both classes.
    """
    k = profile.hard_scale
    mode = _cell_mode(rng, stalled, k)
    geo = _geometry(rng, project, profile)
    low = rng.random() < 0.15 * k
    few = rng.random() < 0.12 * k
    jitter_draw = rng.random()
    strong_jitter = jitter_draw < 0.06 * k * project.jitter_prone
    mild_jitter = not strong_jitter and jitter_draw < 0.3 * k * project.jitter_prone
    n_neighbours = int(min(rng.poisson(0.3 * project.vessel_density * k), 2))
    static_neighbour = bool(rng.random() < 0.06 * k)
    n_penetrating = int(min(rng.poisson(0.6 * project.vessel_density * k), 4))
    penetrating_in_roi = bool(n_penetrating and rng.random() < 0.15)
    black = int(rng.integers(1, max(2, int(0.15 * geo["depth"])))) if rng.random() < 0.08 * k else 0
    blank = float(rng.uniform(0.1, 0.35)) if rng.random() < 0.2 * k else 0.0
    blackout = bool(rng.random() < 0.08 * k)
    lumen = project.lumen_level * rng.uniform(0.85, 1.15) * (rng.uniform(0.3, 0.45) if low else 1.0)
    shadow = project.shadow_strength * (rng.uniform(0.45, 0.65) if low else 1.0)
    noise = project.noise_sigma * rng.uniform(0.8, 1.25)
    spec = StackSpec(
        render_seed=render_seed, cell_mode=mode, **geo,
        tissue_level=project.tissue_level * rng.uniform(0.85, 1.15),
        tissue_texture=project.tissue_texture * rng.uniform(0.8, 1.2),
        lumen_level=lumen, shadow_strength=shadow, noise_sigma=noise,
        coverage=float(rng.uniform(0.2, 0.45)),
        target_visible=float(rng.uniform(0.1, 0.2) if few else rng.uniform(0.4, 0.85)),
        n_other_vessels=int(min(rng.poisson(1.5 * project.vessel_density) + 1, 8)),
        outline_thickness=project.outline_thickness,
        n_neighbours=n_neighbours, static_neighbour=static_neighbour,
        n_penetrating=n_penetrating, penetrating_in_roi=penetrating_in_roi,
        large_vessel=bool(rng.random() < 0.15 * k),
        jitter_px=float(rng.uniform(1.0, 2.2) if strong_jitter else rng.uniform(0.3, 0.8) if mild_jitter else 0.0),
        blackout=blackout, black_slices=black, blank_ends=blank,
        vignette=float(project.vignette * rng.uniform(0.5, 1.5) * k),
        gradient=float(rng.uniform(0.0, 0.5) * k),
        attenuation=float(rng.uniform(0.0, 0.5) * k),
    )
    flags = {"low_contrast": low, "few_slices": few, "strong_jitter": strong_jitter,
             "static_neighbour": static_neighbour, "penetrating_in_roi": penetrating_in_roi,
             "blackout": blackout, "black_slices": bool(black), "blank_ends": bool(blank),
             "low_snr": lumen * shadow / noise < 6.0}
    hard = ((mode,) if mode in DIFFICULTY else ()) + tuple(name for name, on in flags.items() if on)
    return spec, hard + ("neighbour",) * n_neighbours


def difficulty(hard: tuple[str, ...]) -> float:
    """How hard a stack is to read, from 0 (clear) to about 1 (a coin toss): each hard case or
    nuisance removes its share of what is left readable."""
    return float(1.0 - np.prod([1.0 - DIFFICULTY[name] for name in hard]))


def crowd(rng: np.random.Generator, stalled: bool, level: float) -> tuple[float, bool]:
    """The crowd's score (fraction of its votes saying "stalled") and the tier-1 flag.

    Each stack's crowd is right with a probability drawn around ``0.97 - 0.42 * level``, so
    misses and false alarms both grow with difficulty; 5–30 votes. Tier 1 holds the confident
    answers (score ≤ 0.1 or ≥ 0.9 from at least 8 votes) and the ones an expert checked (more
    often the uncertain ones), so hard stacks reach tier 1 too.
    """
    right = 0.97 - 0.42 * level
    p = rng.beta(right * 12, (1 - right) * 12)
    votes = int(min(5 + rng.poisson(10), 30))
    yes = int(rng.binomial(votes, p if stalled else 1 - p))
    score = round(yes / votes, 4)
    confident = votes >= 8 and abs(score - 0.5) >= 0.4 and rng.random() < 0.9
    expert = rng.random() < 0.04 + 0.35 * (1.0 - abs(2 * score - 1))
    return score, bool(confident or expert)
