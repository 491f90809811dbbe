"""Evaluation harness for memorization-removal methods. Importing this package does nothing
heavy: torch, transformers and Hydra load only when a run starts."""

__version__ = "0.1.0"
