"""Apps: manifest parsing, loading definitions, the per-engine registry."""

from __future__ import annotations

from .loader import LoadedApp, LoadedWorkflow, load_app
from .manifest import AppManifest, read_manifest
from .registry import AppRegistry

__all__ = ("AppManifest", "AppRegistry", "LoadedApp", "LoadedWorkflow", "load_app", "read_manifest")
