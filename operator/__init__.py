"""The kopf operator: FaultTolerancePolicy reconciliation, predictions and remediation.

Imported as ``ftmoe.operator``; it may use ``ftmoe.predictor`` and ``ftmoe.simulator``
through small interfaces, never the other way round.
"""

if __name__ == "operator":
    # This folder installs as `ftmoe.operator`. But `python -m ...` or `python -c ...` run
    # from a checkout put the repository root first on sys.path, and then this folder
    # shadows the standard library's `operator`, which collections, functools and torch
    # import at start-up. Become the standard library's module instead, so a checkout
    # behaves exactly like an installed wheel. tests/test_packaging.py covers both.
    import os as _os

    __file__ = _os.path.join(_os.path.dirname(_os.__file__), "operator.py")
    with open(__file__, encoding="utf-8") as _source:
        exec(compile(_source.read(), __file__, "exec"))  # noqa: S102 - the stdlib's own source
    del _os, _source, __path__
