"""The operator's API types: the one source of truth for both custom resources.

Each field is declared once, in ``policy_types`` (FaultTolerancePolicy spec),
``status_types`` (its status) and ``prediction_types`` (NodeFaultPrediction), with its
default, bounds, description and the CEL rules beside it. ``crds.generate()`` renders
``crds/*.yaml`` from them (``ftmoe crds generate``) and a test fails when the committed
files differ. This package imports nothing from the rest of the operator but the
duration parser, so every other module may import it.
"""
