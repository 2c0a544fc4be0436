"""Baselines behind the Predictor interface, written from their published descriptions.

- ``mlp``: the LLM fault-tolerance seed's predictor, P(fault) = sigmoid(w.x + b) with a
  warning threshold theta (logistic regression on the current interval's features).
- ``dftm``, ``pcft``, ``eclb``: trend and threshold rules on CPU (DFTM: current load;
  PCFT: the CPU trend extrapolated to the target interval; ECLB: an exponentially
  smoothed load), each threshold fitted on the training split.
- ``promql``: what admins run today, Prometheus ``predict_linear``-style rules: memory
  or disk projected to fill within the lead time, or CPU saturated.
- ``gbt``: gradient-boosted trees (scikit-learn) on windowed features and their trends.
- ``cmodlb``: a next-step linear predictor of host state plus k-means over predicted
  states, clusters labelled by the fault classes seen in them.
- ``pregan``: GRU over time + graph attention over migrations + attention over hosts,
  with prototype typing; ``pregan_plus``: the same with a transformer encoder over time.
"""
