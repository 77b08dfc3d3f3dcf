"""Tasks of ocimodel."""
