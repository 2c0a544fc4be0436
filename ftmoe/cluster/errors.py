class ClusterError(RuntimeError):
    """A local-cluster step failed; the message says what to do about it."""
