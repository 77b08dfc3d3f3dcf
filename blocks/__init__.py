"""Blocks of ocimodel."""
