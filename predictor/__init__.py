"""The FT-MoE fault predictor and its baselines.

Imported as ``ftmoe.predictor``. Pure torch/numpy: it imports neither kopf nor kubernetes.
"""
