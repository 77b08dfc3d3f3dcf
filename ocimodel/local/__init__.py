"""ocimodel.local: a local OCI-compatible service (Data Science, Object Storage, predict)."""
