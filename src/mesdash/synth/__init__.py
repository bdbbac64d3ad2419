"""Synthetic fab generator: a seeded, realistic back-end factory in the warehouse tables."""

from mesdash.synth.generator import generate
from mesdash.synth.manifest import load_manifest, manifest_path

__all__ = ["generate", "load_manifest", "manifest_path"]
