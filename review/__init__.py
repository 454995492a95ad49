"""The Label Studio review loop: push pseudo-labels as predictions, pull reviewers'
corrections back, apply them to the dataset (see docs/architecture.md, "Review loop").

Pure conversions (keyframes, labeling configs, task payloads, result parsing) import
nothing from Label Studio; only ``client`` talks to a server.
"""
