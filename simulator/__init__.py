"""The cluster simulator that produces the FT dataset and feeds the local cluster.

Imported as ``ftmoe.simulator``. It never imports ``ftmoe.operator``.
"""
