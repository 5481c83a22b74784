"""Pixels to a model's input: a user's photo to EMNIST's look, on-device augmentation and preprocessing."""
