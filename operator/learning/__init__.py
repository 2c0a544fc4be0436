"""The operator's learning room: what the cluster really showed (``ground_truth``), the
buffer of what each interval saw (``experience``), the operator grading its own alarms
(``grading``), champion/challenger tuning (``tuning``), and one ``Learner`` per policy that
owns all of it (``learner``). The interval calls ``Learner.serving``, ``record`` and
``schedule``; nothing else in the operator touches this state.
"""
