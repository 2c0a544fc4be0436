"""The predictor the operator serves: loaded once per model reference, never unpickled.

Sources: the FT-MoE model shipped in the package (``Default``), a folder in the container
(``Path``), or a ConfigMap holding ``config.json`` and, as binaryData,
``model.safetensors``. A missing or corrupt model raises ``ModelFileError`` with the
path and the cause; the policy's ModelLoaded condition shows it.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ftmoe.operator.policy import ModelRef
from ftmoe.predictor.base import CONFIG_FILE, WEIGHTS_FILE, Predictor
from ftmoe.predictor.errors import ModelFileError
from ftmoe.predictor.registry import load

ConfigMapReader = Callable[[str, str], dict[str, Any]]  # (namespace, name) -> ConfigMap as a dict


@dataclass
class LoadedModel:
    predictor: Predictor
    version: str
    source: str
    folder: Path


def default_model_folder() -> Path:
    return Path(str(resources.files("ftmoe.predictor.models") / "default"))


def model_version(folder: Path, predictor: Predictor) -> str:
    """Creation date plus a digest of the files, so two trainings never share a version."""
    digest = hashlib.sha256()
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        path = folder / name
        if path.is_file():
            digest.update(path.read_bytes())
    created = str(predictor.info.get("created", "")) or "model"
    return f"{predictor.kind}-{created[:10]}-{digest.hexdigest()[:10]}"


class ModelStore:
    """Caches loaded models by reference (and ConfigMap resourceVersion)."""

    def __init__(self, read_config_map: ConfigMapReader | None = None):
        self.read_config_map = read_config_map
        self.cache: dict[str, LoadedModel] = {}
        self.broken: dict[str, str] = {}  # ConfigMap version -> why it did not load
        self.lock = threading.Lock()

    def get(self, ref: ModelRef) -> LoadedModel:
        with self.lock:
            if ref.source == "ConfigMap":
                return self._from_config_map(ref)
            key = ref.key()
            if key not in self.cache:
                folder = default_model_folder() if ref.source == "Default" else Path(str(ref.path))
                self.cache[key] = self._load(folder, ref.source if ref.source == "Default" else f"Path {folder}")
            return self.cache[key]

    def put(self, ref: ModelRef, loaded: LoadedModel) -> None:
        """Serve another model for this reference (online tuning swaps in a new champion)."""
        with self.lock:
            self.cache[ref.key()] = loaded

    @staticmethod
    def _load(folder: Path, source: str) -> LoadedModel:
        predictor = load(folder)
        doc = (folder / CONFIG_FILE).read_text()
        import json

        predictor.info.setdefault("created", json.loads(doc).get("created", ""))
        return LoadedModel(predictor, model_version(folder, predictor), source, folder)

    def _from_config_map(self, ref: ModelRef) -> LoadedModel:
        assert ref.config_map is not None
        namespace, name = ref.config_map.namespace, ref.config_map.name
        if self.read_config_map is None:
            raise ModelFileError("model.source is ConfigMap but the operator has no API access to read it")
        cm = self.read_config_map(namespace, name)
        rv = cm.get("metadata", {}).get("resourceVersion", "")
        key = f"{ref.key()}@{rv}"
        if key in self.cache:
            return self.cache[key]
        if key in self.broken:  # this version failed before: say so again without unpacking it again
            raise ModelFileError(self.broken[key])
        data, binary = cm.get("data") or {}, cm.get("binaryData") or {}
        if CONFIG_FILE not in data:
            raise ModelFileError(
                f"ConfigMap {namespace}/{name} has no data key {CONFIG_FILE!r}; "
                f"create it with: kubectl create configmap {name} --from-file=MODEL_DIR/"
            )
        folder = Path(tempfile.mkdtemp(prefix=f"ftmoe-model-{name}-"))
        try:
            (folder / CONFIG_FILE).write_text(data[CONFIG_FILE])
            if WEIGHTS_FILE in binary:
                (folder / WEIGHTS_FILE).write_bytes(base64.b64decode(binary[WEIGHTS_FILE]))
            loaded = self._load(folder, f"ConfigMap {namespace}/{name}")
        except Exception as err:
            shutil.rmtree(folder, ignore_errors=True)  # a broken model must not leave a folder per interval
            self.broken = {k: v for k, v in self.broken.items() if not k.startswith(ref.key() + "@")}
            self.broken[key] = f"ConfigMap {namespace}/{name} (resourceVersion {rv}): {type(err).__name__}: {err}"
            raise ModelFileError(self.broken[key]) from err
        self.cache = {k: v for k, v in self.cache.items() if not k.startswith(ref.key() + "@")}
        self.cache[key] = loaded
        return loaded
