"""The data contract every side shares, and which imports none of them.

- ``features``: the host feature catalogue (names, units, default PromQL): a model stores
  the names it was trained on, the operator needs a query for each, the simulator serves them.
- ``dataset``: dataset format v1 (load, save, validate, describe), for real and simulated data.
- ``oracle``: what a perfect causal predictor could detect on a dataset with fault records,
  the ceiling every evaluation and benchmark reports against.

``predictor``, ``simulator`` and ``operator`` import from here; nothing here imports them
(tests/test_imports.py walks it).
"""
