"""Object Storage records of the local OCI service: namespaces, buckets, objects, multipart uploads.

Objects point at content-addressed blobs by sha256, so an object's name never becomes a file
path: any UTF-8 name is safe to store and cannot reach outside the data directory.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field

from oci.object_storage.models import ObjectSummary

from .core import OCIError, now, rfc3339
from .state import ServiceState
from .store import Blob

SERVICE_NAMESPACE = "id19sfcrra6z"
SERVICE_TENANCY = "ocid1.tenancy.oc1..servicepacks"
MAX_OBJECT_NAME_BYTES = 1024
MAX_PART_NUMBER = 10_000
STANDARD_TIER = ObjectSummary.STORAGE_TIER_STANDARD

_TABLES = """
CREATE TABLE IF NOT EXISTS os_buckets (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    tenancy TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (namespace, name)
);
CREATE TABLE IF NOT EXISTS os_objects (
    namespace TEXT NOT NULL,
    bucket TEXT NOT NULL,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    multipart_md5 TEXT,
    etag TEXT NOT NULL,
    version_id TEXT NOT NULL,
    storage_tier TEXT NOT NULL,
    time_created TEXT NOT NULL,
    time_modified TEXT NOT NULL,
    headers TEXT NOT NULL,
    PRIMARY KEY (namespace, bucket, name)
);
CREATE TABLE IF NOT EXISTS os_uploads (
    upload_id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    bucket TEXT NOT NULL,
    object TEXT NOT NULL,
    time_created TEXT NOT NULL,
    storage_tier TEXT NOT NULL,
    headers TEXT NOT NULL,
    slot INTEGER
);
CREATE INDEX IF NOT EXISTS os_uploads_bucket ON os_uploads(namespace, bucket, object);
CREATE TABLE IF NOT EXISTS os_parts (
    upload_id TEXT NOT NULL,
    part_num INTEGER NOT NULL,
    size INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    etag TEXT NOT NULL,
    time_modified TEXT NOT NULL,
    in_place INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (upload_id, part_num)
);
"""

_OBJECT_COLUMNS = (
    "namespace, bucket, name, sha256, size, md5, multipart_md5, etag, version_id, storage_tier, "
    "time_created, time_modified, headers"
)


def ensure_tables(state: ServiceState) -> None:
    """Create the Object Storage tables once per service."""
    if not state.extras.get("objectstorage.tables"):
        state.store.migrate(_TABLES)
        state.extras["objectstorage.tables"] = True


def namespace_of(tenancy: str) -> str:
    """The Object Storage namespace of a tenancy: 12 lowercase characters derived from its OCID."""
    digest = hashlib.sha256(tenancy.encode()).hexdigest()
    letters = "".join(chr(ord("a") + int(c, 16) % 26) for c in digest[:12])
    return "ns" + letters[:10]


# --- errors ------------------------------------------------------------------------------------


def bucket_not_found(namespace: str, bucket: str) -> OCIError:
    """404 BucketNotFound, as OCI answers both 'absent' and 'not yours'."""
    return OCIError(
        404,
        "BucketNotFound",
        f"Either the bucket named '{bucket}' does not exist in the namespace '{namespace}' "
        "or you are not authorized to access it.",
    )


def object_not_found(bucket: str, name: str) -> OCIError:
    """404 ObjectNotFound naming the object."""
    return OCIError(
        404,
        "ObjectNotFound",
        f"The object '{name}' was not found in the bucket '{bucket}'.",
    )


def upload_not_found(upload_id: str) -> OCIError:
    """404 NoSuchUpload naming the upload id."""
    return OCIError(
        404,
        "NoSuchUpload",
        f"The upload id '{upload_id}' does not exist for this object; create a multipart "
        "upload first.",
    )


def namespace_not_found(namespace: str) -> OCIError:
    """404 for a namespace the caller may not use."""
    return OCIError(
        404,
        "NotAuthorizedOrNotFound",
        f"Namespace {namespace} not found or you are not authorized to access it.",
    )


# --- namespaces and buckets --------------------------------------------------------------------


def check_namespace(tenancy: str, namespace: str, *, write: bool) -> None:
    """Allow a tenancy its own namespace, and reads of the service-pack namespace."""
    if namespace == namespace_of(tenancy):
        return
    if namespace == SERVICE_NAMESPACE and (not write or tenancy == SERVICE_TENANCY):
        return
    raise namespace_not_found(namespace)


def find_bucket(state: ServiceState, namespace: str, name: str) -> dict | None:
    """The Bucket document, or None."""
    rows = state.store.execute(
        "SELECT data FROM os_buckets WHERE namespace=? AND name=?", (namespace, name)
    )
    return json.loads(rows[0][0]) if rows else None


def get_bucket(
    state: ServiceState, tenancy: str, namespace: str, name: str, *, write: bool = False
) -> dict:
    """The Bucket document the caller may use, or 404."""
    ensure_tables(state)
    check_namespace(tenancy, namespace, write=write)
    doc = find_bucket(state, namespace, name)
    if doc is None:
        raise bucket_not_found(namespace, name)
    return doc


def insert_bucket(state: ServiceState, tenancy: str, doc: dict) -> dict:
    """Store a new bucket; 409 BucketAlreadyExists if the name is taken in the namespace."""
    with state.store.transaction() as db:
        row = db.execute(
            "SELECT 1 FROM os_buckets WHERE namespace=? AND name=?",
            (doc["namespace"], doc["name"]),
        ).fetchone()
        if row:
            raise OCIError(
                409,
                "BucketAlreadyExists",
                f"Either the bucket '{doc['name']}' in namespace '{doc['namespace']}' already "
                "exists or you are not authorized to create it; choose another name.",
            )
        db.execute(
            "INSERT INTO os_buckets(namespace, name, tenancy, data) VALUES (?,?,?,?)",
            (doc["namespace"], doc["name"], tenancy, json.dumps(doc)),
        )
    return doc


def list_buckets(state: ServiceState, namespace: str, compartment_id: str) -> list[dict]:
    """Buckets of a namespace in a compartment, by name."""
    rows = state.store.execute(
        "SELECT data FROM os_buckets WHERE namespace=? ORDER BY name", (namespace,)
    )
    docs = [json.loads(r[0]) for r in rows]
    return [d for d in docs if d["compartmentId"] == compartment_id]


def delete_bucket(state: ServiceState, namespace: str, name: str) -> None:
    """Remove an empty bucket; 409 BucketNotEmpty if it holds objects or uploads."""
    with state.store.transaction() as db:
        objects = db.execute(
            "SELECT 1 FROM os_objects WHERE namespace=? AND bucket=? LIMIT 1", (namespace, name)
        ).fetchone()
        uploads = db.execute(
            "SELECT 1 FROM os_uploads WHERE namespace=? AND bucket=? LIMIT 1", (namespace, name)
        ).fetchone()
        if objects or uploads:
            what = "objects" if objects else "multipart uploads in progress"
            raise OCIError(
                409,
                "BucketNotEmpty",
                f"Bucket '{name}' in namespace '{namespace}' still has {what}; delete them "
                "(or abort the uploads) first.",
            )
        db.execute("DELETE FROM os_buckets WHERE namespace=? AND name=?", (namespace, name))


# --- objects -----------------------------------------------------------------------------------


@dataclass
class ObjectRecord:
    """One stored object: where its bytes live (sha256) and the headers it is served with."""

    namespace: str
    bucket: str
    name: str
    sha256: str
    size: int
    md5_b64: str
    etag: str
    time_created: str
    time_modified: str
    version_id: str
    storage_tier: str = STANDARD_TIER
    multipart_md5: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def content_type(self) -> str:
        """The stored Content-Type."""
        return self.headers.get("content-type", "application/octet-stream")

    @property
    def metadata(self) -> dict[str, str]:
        """The ``opc-meta-*`` headers."""
        return {k: v for k, v in self.headers.items() if k.startswith("opc-meta-")}


def _record(row: tuple) -> ObjectRecord:
    (ns, bucket, name, sha, size, md5, mp_md5, etag, version, tier, created, modified, hdrs) = row
    return ObjectRecord(
        namespace=ns,
        bucket=bucket,
        name=name,
        sha256=sha,
        size=size,
        md5_b64=md5,
        multipart_md5=mp_md5,
        etag=etag,
        version_id=version,
        storage_tier=tier,
        time_created=created,
        time_modified=modified,
        headers=json.loads(hdrs),
    )


def find_object(state: ServiceState, namespace: str, bucket: str, name: str) -> ObjectRecord | None:
    """The object record, or None."""
    rows = state.store.execute(
        f"SELECT {_OBJECT_COLUMNS} FROM os_objects WHERE namespace=? AND bucket=? AND name=?",
        (namespace, bucket, name),
    )
    return _record(rows[0]) if rows else None


def store_object(
    state: ServiceState,
    namespace: str,
    bucket: str,
    name: str,
    blob: Blob,
    headers: dict[str, str],
    *,
    multipart_md5: str | None = None,
    storage_tier: str = STANDARD_TIER,
    if_match: str | None = None,
    if_none_match: str | None = None,
) -> ObjectRecord:
    """Create or overwrite an object atomically, honouring if-match / if-none-match."""
    stamp = rfc3339(now())
    with state.store.transaction() as db:
        row = db.execute(
            "SELECT etag, time_created FROM os_objects WHERE namespace=? AND bucket=? AND name=?",
            (namespace, bucket, name),
        ).fetchone()
        check_preconditions(row[0] if row else None, if_match, if_none_match, name)
        rec = ObjectRecord(
            namespace=namespace,
            bucket=bucket,
            name=name,
            sha256=blob.sha256,
            size=blob.size,
            md5_b64=blob.md5_b64,
            multipart_md5=multipart_md5,
            etag=str(uuid.uuid4()),
            version_id=str(uuid.uuid4()),
            storage_tier=storage_tier,
            time_created=row[1] if row else stamp,
            time_modified=stamp,
            headers=headers,
        )
        db.execute(
            f"INSERT OR REPLACE INTO os_objects({_OBJECT_COLUMNS}) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                namespace,
                bucket,
                name,
                rec.sha256,
                rec.size,
                rec.md5_b64,
                rec.multipart_md5,
                rec.etag,
                rec.version_id,
                rec.storage_tier,
                rec.time_created,
                rec.time_modified,
                json.dumps(headers),
            ),
        )
    return rec


def check_preconditions(
    etag: str | None, if_match: str | None, if_none_match: str | None, name: str
) -> None:
    """412 when ``if-match`` does not name the current etag or ``if-none-match`` matches it."""
    if if_match and (etag is None or (if_match != "*" and if_match != etag)):
        raise OCIError(
            412,
            "IfMatchFailed",
            f"The if-match etag {if_match!r} does not match the current etag of '{name}'.",
        )
    if if_none_match and etag is not None and if_none_match in ("*", etag):
        raise OCIError(
            412,
            "IfNoneMatchFailed",
            f"The object '{name}' already exists and if-none-match is {if_none_match!r}.",
        )


def remember_md5(state: ServiceState, rec: ObjectRecord, md5_b64: str) -> None:
    """Save the whole-object MD5 computed later for a multipart object."""
    state.store.execute(
        "UPDATE os_objects SET md5=? WHERE namespace=? AND bucket=? AND name=? AND etag=?",
        (md5_b64, rec.namespace, rec.bucket, rec.name, rec.etag),
    )
    rec.md5_b64 = md5_b64


def _existing(db, namespace: str, bucket: str, name: str) -> ObjectRecord:
    """The object read inside a transaction; 404 ObjectNotFound if absent."""
    row = db.execute(
        f"SELECT {_OBJECT_COLUMNS} FROM os_objects WHERE namespace=? AND bucket=? AND name=?",
        (namespace, bucket, name),
    ).fetchone()
    if row is None:
        raise object_not_found(bucket, name)
    return _record(row)


def delete_object(
    state: ServiceState, namespace: str, bucket: str, name: str, if_match: str | None
) -> ObjectRecord:
    """Remove an object; 404 if absent, 412 if ``if-match`` fails."""
    with state.store.transaction() as db:
        rec = _existing(db, namespace, bucket, name)
        check_preconditions(rec.etag, if_match, None, name)
        db.execute(
            "DELETE FROM os_objects WHERE namespace=? AND bucket=? AND name=?",
            (namespace, bucket, name),
        )
    return rec


def rename_object(
    state: ServiceState, namespace: str, bucket: str, source: str, new: str
) -> ObjectRecord:
    """Give an object a new name (replacing any object already under it)."""
    with state.store.transaction() as db:
        _existing(db, namespace, bucket, source)
        db.execute(
            "DELETE FROM os_objects WHERE namespace=? AND bucket=? AND name=?",
            (namespace, bucket, new),
        )
        stamp = rfc3339(now())
        db.execute(
            "UPDATE os_objects SET name=?, time_modified=?, version_id=? "
            "WHERE namespace=? AND bucket=? AND name=?",
            (new, stamp, str(uuid.uuid4()), namespace, bucket, source),
        )
    rec = find_object(state, namespace, bucket, new)
    assert rec is not None
    return rec


def scan_objects(
    state: ServiceState,
    namespace: str,
    bucket: str,
    *,
    after: str | None,
    at_or_after: str | None,
    prefix: str,
    batch: int,
) -> list[ObjectRecord]:
    """Up to ``batch`` objects with ``prefix``, in UTF-8 byte order, from a lower bound."""
    sql = f"SELECT {_OBJECT_COLUMNS} FROM os_objects WHERE namespace=? AND bucket=?"
    params: list = [namespace, bucket]
    if prefix:
        sql += " AND name >= ? AND substr(name, 1, ?) = ?"
        params += [prefix, len(prefix), prefix]
    if after is not None:
        sql += " AND name > ?"
        params.append(after)
    if at_or_after is not None:
        sql += " AND name >= ?"
        params.append(at_or_after)
    sql += " ORDER BY name LIMIT ?"
    params.append(batch)
    return [_record(r) for r in state.store.execute(sql, params)]


# --- multipart uploads -------------------------------------------------------------------------


@dataclass
class UploadRecord:
    """A multipart upload in progress."""

    upload_id: str
    namespace: str
    bucket: str
    object: str
    time_created: str
    storage_tier: str
    headers: dict[str, str]
    slot: int | None = None

    def public(self) -> dict:
        """The MultipartUpload model as the API returns it."""
        return {
            "namespace": self.namespace,
            "bucket": self.bucket,
            "object": self.object,
            "uploadId": self.upload_id,
            "timeCreated": self.time_created,
            "storageTier": self.storage_tier,
        }


def create_upload(
    state: ServiceState,
    namespace: str,
    bucket: str,
    obj: str,
    storage_tier: str,
    headers: dict[str, str],
) -> UploadRecord:
    """Start a multipart upload."""
    rec = UploadRecord(
        upload_id=str(uuid.uuid4()),
        namespace=namespace,
        bucket=bucket,
        object=obj,
        time_created=rfc3339(now()),
        storage_tier=storage_tier,
        headers=headers,
    )
    state.store.execute(
        "INSERT INTO os_uploads(upload_id, namespace, bucket, object, time_created, "
        "storage_tier, headers) VALUES (?,?,?,?,?,?,?)",
        (
            rec.upload_id,
            namespace,
            bucket,
            obj,
            rec.time_created,
            storage_tier,
            json.dumps(headers),
        ),
    )
    return rec


def get_upload(
    state: ServiceState, namespace: str, bucket: str, obj: str, upload_id: str
) -> UploadRecord:
    """The upload for exactly this object, or 404 NoSuchUpload."""
    rows = state.store.execute(
        "SELECT upload_id, namespace, bucket, object, time_created, storage_tier, headers, slot "
        "FROM os_uploads WHERE upload_id=? AND namespace=? AND bucket=? AND object=?",
        (upload_id, namespace, bucket, obj),
    )
    if not rows:
        raise upload_not_found(upload_id)
    r = rows[0]
    return UploadRecord(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7])


def claim_slot(state: ServiceState, upload_id: str, size: int) -> int:
    """The region size of an upload's assembly file: the first part's size, fixed once."""
    state.store.execute(
        "UPDATE os_uploads SET slot=? WHERE upload_id=? AND slot IS NULL", (size, upload_id)
    )
    rows = state.store.execute("SELECT slot FROM os_uploads WHERE upload_id=?", (upload_id,))
    if not rows:
        raise upload_not_found(upload_id)
    return rows[0][0]


def list_uploads(state: ServiceState, namespace: str, bucket: str) -> list[dict]:
    """MultipartUpload models of a bucket, by object name then creation time."""
    rows = state.store.execute(
        "SELECT upload_id, namespace, bucket, object, time_created, storage_tier, headers "
        "FROM os_uploads WHERE namespace=? AND bucket=? ORDER BY object, time_created",
        (namespace, bucket),
    )
    return [UploadRecord(*r[:6], json.loads(r[6])).public() for r in rows]


def delete_upload(state: ServiceState, upload_id: str) -> None:
    """Forget an upload and its parts."""
    with state.store.transaction() as db:
        db.execute("DELETE FROM os_parts WHERE upload_id=?", (upload_id,))
        db.execute("DELETE FROM os_uploads WHERE upload_id=?", (upload_id,))


@dataclass
class PartRecord:
    """One uploaded part."""

    part_num: int
    size: int
    md5_b64: str
    etag: str
    in_place: bool = False

    def public(self) -> dict:
        """The MultipartUploadPartSummary model."""
        return {
            "partNumber": self.part_num,
            "size": self.size,
            "md5": self.md5_b64,
            "etag": self.etag,
        }


def put_part(state: ServiceState, upload_id: str, part: PartRecord) -> PartRecord | None:
    """Record (or replace) an uploaded part; return the part it replaced, if any."""
    with state.store.transaction() as db:
        row = db.execute(
            "SELECT part_num, size, md5, etag, in_place FROM os_parts "
            "WHERE upload_id=? AND part_num=?",
            (upload_id, part.part_num),
        ).fetchone()
        db.execute(
            "INSERT OR REPLACE INTO os_parts(upload_id, part_num, size, md5, etag, "
            "time_modified, in_place) VALUES (?,?,?,?,?,?,?)",
            (
                upload_id,
                part.part_num,
                part.size,
                part.md5_b64,
                part.etag,
                rfc3339(now()),
                int(part.in_place),
            ),
        )
    return _part(row) if row else None


def forget_part(state: ServiceState, upload_id: str, part_num: int) -> PartRecord | None:
    """Remove a part's record (its bytes are about to be overwritten); return it."""
    with state.store.transaction() as db:
        row = db.execute(
            "SELECT part_num, size, md5, etag, in_place FROM os_parts "
            "WHERE upload_id=? AND part_num=?",
            (upload_id, part_num),
        ).fetchone()
        db.execute("DELETE FROM os_parts WHERE upload_id=? AND part_num=?", (upload_id, part_num))
    return _part(row) if row else None


def _part(row: tuple) -> PartRecord:
    return PartRecord(row[0], row[1], row[2], row[3], bool(row[4]))


def list_parts(state: ServiceState, upload_id: str) -> list[PartRecord]:
    """The parts of an upload, by part number."""
    rows = state.store.execute(
        "SELECT part_num, size, md5, etag, in_place FROM os_parts WHERE upload_id=? "
        "ORDER BY part_num",
        (upload_id,),
    )
    return [_part(r) for r in rows]


def find_part(state: ServiceState, upload_id: str, part_num: int) -> PartRecord | None:
    """One part, or None."""
    rows = state.store.execute(
        "SELECT part_num, size, md5, etag, in_place FROM os_parts WHERE upload_id=? AND part_num=?",
        (upload_id, part_num),
    )
    return _part(rows[0]) if rows else None
