"""Datasets, samplers, augmentation, the training loop and cross-validation."""
