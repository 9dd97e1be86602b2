"""Experiments and probes beside the training recipe: questions asked once, not the build."""
