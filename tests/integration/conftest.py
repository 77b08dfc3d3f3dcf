"""Object Storage fixtures shared by the integration tests that drive the local service."""

from __future__ import annotations

import uuid

import oci
import pytest
from oci.object_storage.models import CreateBucketDetails


@pytest.fixture(scope="module")
def client(local_oci):
    """The real ObjectStorageClient pointed at the local service."""
    return local_oci.client(oci.object_storage.ObjectStorageClient)


@pytest.fixture(scope="module")
def namespace(client):
    """The local tenancy's Object Storage namespace."""
    return client.get_namespace().data


@pytest.fixture()
def bucket(client, namespace, local_oci):
    """A fresh, empty bucket's name."""
    name = f"bucket-{uuid.uuid4().hex[:10]}"
    details = CreateBucketDetails(name=name, compartment_id=local_oci.config["tenancy"])
    client.create_bucket(namespace, details)
    return name
