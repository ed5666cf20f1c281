"""The synthetic generator: stacks and competition-format CSVs with the phenomena of the real data.

``generator`` writes a data set (``generate``); ``profiles`` draws each stack's specification
(profiles, per-project appearance, hard cases, difficulty, crowd answers); ``render`` draws one
stack from it, with the vessels and cell shadows of ``vessels`` and the tissue, light, jitter and
black masks of ``nuisance``.
"""
