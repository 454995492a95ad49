"""Importers of existing ground-truth annotations into tubelets."""
