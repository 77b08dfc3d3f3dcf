"""Seed the service-pack bucket that conda slug resolution reads (``service_pack/index.json``).

Every tenancy may read namespace ``id19sfcrra6z``; its bucket ``service-conda-packs`` holds the
index shipped in ``seed/service_pack_index.json`` and a small placeholder object at each pack's
path, so existence checks on a pack URI succeed locally.
"""

from __future__ import annotations

import json
from importlib import resources

from oci.object_storage.models import Bucket

from . import objectstorage_db as db
from .core import rfc3339
from .objectstorage_io import blob_from_bytes
from .state import ServiceState

SERVICE_BUCKET = "service-conda-packs"
INDEX_OBJECT = "service_pack/index.json"
SERVICE_COMPARTMENT = "ocid1.compartment.oc1..servicepacks"


def service_pack_index() -> list[dict]:
    """The packs the local service offers: slug, name, version, python, arch, pack_path."""
    text = resources.files("ocimodel.local").joinpath("seed/service_pack_index.json").read_text()
    return json.loads(text)


def _object_name(pack_path: str) -> str:
    prefix = f"oci://{SERVICE_BUCKET}@{db.SERVICE_NAMESPACE}/"
    if not pack_path.startswith(prefix):
        raise ValueError(f"pack_path {pack_path!r} must start with {prefix!r}")
    return pack_path[len(prefix) :]


def seed_service_packs(state: ServiceState) -> None:
    """Create the service-pack bucket and objects once; later starts leave them untouched."""
    db.ensure_tables(state)
    ns = db.SERVICE_NAMESPACE
    if db.find_bucket(state, ns, SERVICE_BUCKET) is None:
        db.insert_bucket(
            state,
            db.SERVICE_TENANCY,
            {
                "namespace": ns,
                "name": SERVICE_BUCKET,
                "compartmentId": SERVICE_COMPARTMENT,
                "metadata": {},
                "createdBy": "ocid1.user.oc1..servicepacks",
                "timeCreated": rfc3339(),
                "etag": "service-conda-packs-v1",
                "publicAccessType": Bucket.PUBLIC_ACCESS_TYPE_OBJECT_READ,
                "storageTier": Bucket.STORAGE_TIER_STANDARD,
                "objectEventsEnabled": False,
                "freeformTags": {},
                "definedTags": {},
                "kmsKeyId": None,
                "isReadOnly": True,
                "id": "ocid1.bucket.oc1..serviceconda",
                "versioning": Bucket.VERSIONING_DISABLED,
                "replicationEnabled": False,
                "autoTiering": Bucket.AUTO_TIERING_DISABLED,
            },
        )
    packs = service_pack_index()
    wanted = {INDEX_OBJECT: (json.dumps(packs, indent=2).encode(), "application/json")}
    for pack in packs:
        note = f"Placeholder for the service conda pack {pack['slug']}.\n".encode()
        wanted[_object_name(pack["pack_path"])] = (note, "application/octet-stream")
    for name, (data, content_type) in wanted.items():
        if db.find_object(state, ns, SERVICE_BUCKET, name) is None:
            blob = blob_from_bytes(state.blobs, data)
            db.store_object(state, ns, SERVICE_BUCKET, name, blob, {"content-type": content_type})
