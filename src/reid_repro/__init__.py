"""reid-repro: a reproducibility harness for unsupervised person re-identification."""

__version__ = "0.1.0"
