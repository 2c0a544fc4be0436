"""ftmoe-operator: predict Kubernetes node faults with FT-MoE and act on them safely.

The distribution installs one import namespace, ``ftmoe``. The repository's top-level
``operator/``, ``predictor/`` and ``simulator/`` folders are installed as
``ftmoe.operator``, ``ftmoe.predictor`` and ``ftmoe.simulator`` so that the standard
library's ``operator`` module is never shadowed.
"""

__version__ = "0.1.0"
