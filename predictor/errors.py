"""Errors of the predictor package, importable without torch (the CLI needs them early)."""


class ModelFileError(ValueError):
    """A model folder is missing, incomplete or corrupt; the message says which file."""
