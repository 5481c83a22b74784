"""letterbench: train, evaluate and compare CNNs on handwritten letters (EMNIST)."""

__version__ = "0.1.0"
