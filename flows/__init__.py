"""Flows of ocimodel."""
