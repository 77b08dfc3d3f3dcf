"""Talking to OCI through the ``oci`` SDK, ocifs and fsspec only."""
