"""Lineage: split / merge genealogy in both directions."""
