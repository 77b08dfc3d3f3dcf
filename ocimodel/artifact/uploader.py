"""The reference's artifact uploaders: how a model's artifact reaches the model catalog.

:class:`SmallArtifactUploader` streams a zip of up to 2 GiB straight into the catalog
(``create_model_artifact``). :class:`LargeArtifactUploader` uploads the zip to Object Storage
in parallel parts — zipping and uploading overlap, and an upload interrupted even by a kill
resumes from the parts already stored — then has the catalog copy it in
(``export_model_artifact``, waited on with a deadline) and removes the temporary object. Both
take a folder (zipped with its sha256 manifest, ``.model-ignore`` honoured) or a zip; the large
one also an ``oci://`` zip. ``save`` uses these classes, so they are the one way artifacts go up.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ocimodel.artifact.archive import iter_included, make_zip, start_zip_into
from ocimodel.artifact.source import guess_model_file
from ocimodel.errors import OcimodelError
from ocimodel.files import is_oci_uri, local_path, write_bytes_atomic
from ocimodel.layout import SERIALIZER_FILES
from ocimodel.oci import catalog, multipart
from ocimodel.oci.storage import parse_bucket_uri, require_bucket, uri_exists
from ocimodel.progress import new_progress

if TYPE_CHECKING:
    from ocimodel.oci.auth import AuthLike

WORK_DIR_ENV = "OCIMODEL_WORK_DIR"
"""Where zips of artifacts being uploaded are kept until the upload is done (default: a folder
in the system temp directory); a resumed upload finds its zip and journal there."""
SMALL_ARTIFACT_LIMIT = 2 * 1024**3
"""Artifacts up to this size go straight to and from the catalog; larger ones need a bucket."""
ZIP_OVERHEAD = 64 * 1024
"""Bytes a zip may add to its files (headers, central directory, manifest), per file."""


class ArtifactUploadError(ValueError, OcimodelError):
    """An artifact cannot be uploaded as asked (no bucket_uri, object exists, bad path)."""


def model_id_of(dsc_model: Any) -> str:
    """The OCID of a model given as an OCID or as an object with ``id``."""
    value = dsc_model if isinstance(dsc_model, str) else getattr(dsc_model, "id", None)
    if not value:
        raise ArtifactUploadError(
            f"dsc_model is {dsc_model!r}; pass the model's OCID or the catalog's model object."
        )
    return value


def work_dir() -> str:
    """The folder that keeps zips (and their upload journals) while they are uploaded."""
    path = os.environ.get(WORK_DIR_ENV) or os.path.join(
        tempfile.gettempdir(), f"ocimodel-work-{os.getuid() if hasattr(os, 'getuid') else 0}"
    )
    os.makedirs(path, exist_ok=True)
    return path


def manifest_files(folder: str) -> list[str]:
    """The files the artifact's manifest covers: its model file and serializer pickles."""
    model = guess_model_file(folder)
    names = [model] if model else []
    return names + [n for n in SERIALIZER_FILES if os.path.isfile(os.path.join(folder, n))]


def folder_digest(folder: str) -> str:
    """Changes when a file of the folder is added, removed or rewritten (names, sizes, times)."""
    digest = hashlib.sha256()
    for rel in iter_included(folder):
        stat = os.stat(os.path.join(folder, *rel.split("/")))
        digest.update(f"{rel}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


@contextlib.contextmanager
def _zipped(artifact_path: str) -> Iterator[str]:
    """A local zip of the artifact: the zip itself, or a temporary zip of the folder."""
    path = local_path(artifact_path)
    if os.path.isfile(path):
        yield path
        return
    if not os.path.isdir(path):
        raise ArtifactUploadError(
            f"artifact_path {artifact_path!r} is neither a folder nor a zip file; pass the "
            "prepared artifact folder or its zip."
        )
    scratch = tempfile.mkdtemp(prefix="ocimodel-zip-", dir=work_dir())
    try:
        yield make_zip(
            path, os.path.join(scratch, "artifact.zip"), manifest_files=manifest_files(path)
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class ArtifactUploader(ABC):
    """Uploads the artifact at ``artifact_path`` (a folder or a zip) as the artifact of
    ``dsc_model`` (its OCID, or the catalog's model object)."""

    def __init__(self, dsc_model: Any, artifact_path: str):
        self.dsc_model = dsc_model
        self.artifact_path = artifact_path
        self.auth: AuthLike = None

    @property
    def model_id(self) -> str:
        """The OCID of the model the artifact is uploaded to."""
        return model_id_of(self.dsc_model)

    @abstractmethod
    def upload(self) -> None:
        """Uploads the artifact."""


class SmallArtifactUploader(ArtifactUploader):
    """Streams the zipped artifact straight into the model catalog (up to 2 GiB)."""

    def __init__(self, dsc_model: Any, artifact_path: str, *, auth: AuthLike = None):
        super().__init__(dsc_model, artifact_path)
        self.auth = auth

    def upload(self) -> None:
        model_id = self.model_id
        with _zipped(self.artifact_path) as path:
            progress = new_progress(f"Uploading the artifact of {model_id}")
            catalog.upload_model_artifact(self.auth, model_id, path, progress=progress)


class LargeArtifactUploader(ArtifactUploader):
    """Uploads the artifact through Object Storage (``bucket_uri``) in parallel parts, then
    has the catalog copy it in; see the module docstring."""

    def __init__(
        self,
        dsc_model: Any,
        artifact_path: str,
        bucket_uri: str | None = None,
        auth: AuthLike = None,
        region: str | None = None,
        overwrite_existing_artifact: bool | None = True,
        remove_existing_artifact: bool | None = True,
        parallel_process_count: int = 9,
        *,
        object_name: str | None = None,
        max_wait_time: float = 1200,
        poll_interval: float = 10,
    ):
        super().__init__(dsc_model, artifact_path)
        self.auth = auth
        self.region = region
        self.overwrite_existing_artifact = bool(overwrite_existing_artifact)
        self.remove_existing_artifact = bool(remove_existing_artifact)
        self.parallel_process_count = parallel_process_count
        self.max_wait_time, self.poll_interval = max_wait_time, poll_interval
        self._object_name = object_name
        self.remote_source = is_oci_uri(artifact_path)
        if not self.remote_source and not bucket_uri:
            raise ArtifactUploadError(
                "A large artifact goes through Object Storage: pass "
                "bucket_uri='oci://<bucket>@<namespace>/<prefix>/'."
            )
        self.bucket_uri = bucket_uri

    @property
    def object_uri(self) -> str:
        """The object the catalog copies the artifact from."""
        if self.remote_source:
            return self.artifact_path
        bucket, namespace, prefix = parse_bucket_uri(self.bucket_uri or "")
        name = self._object_name or f"{self.model_id}.zip"
        return f"oci://{bucket}@{namespace}/{prefix}{name}"

    def check(self) -> None:
        """Fails before anything is created when the bucket does not exist, or when the object
        exists and must not be replaced (a journal of our own unfinished upload excepted)."""
        if self.remote_source:
            if not uri_exists(self.artifact_path, auth=self.auth):
                raise ArtifactUploadError(
                    f"artifact_path {self.artifact_path!r} does not exist; pass the oci:// URI "
                    "of an artifact zip."
                )
            return
        require_bucket(self.object_uri, auth=self.auth)
        if not self.overwrite_existing_artifact and uri_exists(self.object_uri, auth=self.auth):
            raise ArtifactUploadError(
                f"{self.object_uri} exists and overwrite_existing_artifact=False; remove it, "
                "pass another bucket_uri, or overwrite_existing_artifact=True."
            )

    def upload(self) -> None:
        self.check()
        model_id = self.model_id
        if not self.remote_source:
            self._upload_to_bucket()
        try:
            catalog.export_model_artifact(
                self.auth,
                model_id,
                self.object_uri,
                region=self.region,
                max_wait_time=self.max_wait_time,
                poll_interval=self.poll_interval,
                progress=new_progress(f"Copying the artifact of {model_id} into the catalog"),
            )
        finally:
            if not self.remote_source and self.remove_existing_artifact:
                multipart.delete_object(self.object_uri, auth=self.auth, missing_ok=True)
        self._forget_local_zip()

    # --- zipping while uploading ---------------------------------------------------------------

    def _local_zip(self) -> str:
        """Where the zip of a folder artifact is built (stable, so a re-run finds it)."""
        key = hashlib.sha256(self.object_uri.encode()).hexdigest()[:24]
        return os.path.join(work_dir(), f"{key}.zip")

    def _upload_to_bucket(self) -> None:
        source = local_path(self.artifact_path)
        progress = new_progress(f"Uploading the artifact of {self.model_id}")
        if os.path.isfile(source):
            multipart.upload_file(
                source,
                self.object_uri,
                auth=self.auth,
                parallel_process_count=self.parallel_process_count,
                progress=progress,
            )
            return
        if not os.path.isdir(source):
            raise ArtifactUploadError(
                f"artifact_path {self.artifact_path!r} is neither a folder, a zip file nor an "
                "oci:// URI."
            )
        path = self._local_zip()
        stamp = path + ".source"
        digest = folder_digest(source)
        job = None
        done = threading.Event()
        if os.path.isfile(path) and _read(stamp) == digest:
            done.set()  # a complete zip of this very folder, left by an interrupted upload
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(stamp)
            job = start_zip_into(
                source, path, force_overwrite=True, manifest_files=manifest_files(source)
            )
            done = job.done
            threading.Thread(
                target=_stamp_when_zipped, args=(job, stamp, digest), daemon=True
            ).start()
        try:
            multipart.upload_file(
                path,
                self.object_uri,
                auth=self.auth,
                parallel_process_count=self.parallel_process_count,
                progress=progress,
                source_done=done,
                expected_max_size=_zip_size_bound(source),
            )
        except multipart.SourceChangedError:
            if job is not None:
                job.result()  # the zip's own error explains why the file went away
            raise
        if job is not None:
            job.result()

    def _forget_local_zip(self) -> None:
        path = self._local_zip()
        for leftover in (path, path + ".source", multipart.journal_path(path)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)


def _stamp_when_zipped(job: Any, stamp: str, digest: str) -> None:
    """Marks the zip complete as soon as it is, so a run killed while the upload goes on
    reuses the zip instead of building it again."""
    job.done.wait()
    try:
        job.result()
    except BaseException:  # the upload reports the zip's error
        return
    write_bytes_atomic(stamp, digest.encode("utf-8"))


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError:
        return None


def _zip_size_bound(folder: str) -> int:
    """An upper bound of the folder's zip size (files stored or smaller, plus headers)."""
    total, count = 0, 0
    for rel in iter_included(folder):
        total += os.path.getsize(os.path.join(folder, *rel.split("/")))
        count += 1
    return total + ZIP_OVERHEAD * (count + 2)


def upload_artifact_zip(
    artifact_dir: str,
    uri: str,
    *,
    name: str,
    auth: AuthLike = None,
    force_overwrite: bool = False,
    parallel_process_count: int = 9,
) -> str:
    """Zips the artifact to ``uri`` — a local folder or an ``oci://`` prefix (the zip is
    ``<name>.zip`` there), or a path ending in ``.zip`` — and returns where it went."""
    target = uri if uri.endswith(".zip") else uri.rstrip("/") + f"/{name}.zip"
    files = manifest_files(artifact_dir)
    if not is_oci_uri(target):
        return make_zip(
            artifact_dir, local_path(target), force_overwrite=force_overwrite, manifest_files=files
        )
    if not force_overwrite and uri_exists(target, auth=auth):
        raise ArtifactUploadError(
            f"{target} exists; pass force_overwrite=True to replace it, or another uri."
        )
    require_bucket(target, auth=auth)
    with _zipped(artifact_dir) as path:
        multipart.upload_file(
            path,
            target,
            auth=auth,
            parallel_process_count=parallel_process_count,
            progress=new_progress(f"Uploading {os.path.basename(target)}"),
        )
    return target


MODEL_DESCRIPTION_FILE = "model_description.json"
MODEL_DESCRIPTION_TYPE = "modelOSSReferenceDescription"
MODEL_DESCRIPTION_KEY = "modelDescription"
"""Custom metadata key marking a model whose artifact is a description of objects (by
reference), as the reference writes it."""


def upload_by_reference(
    dsc_model: Any,
    artifact_dir: str,
    bucket_uri: str,
    *,
    auth: AuthLike = None,
    parallel_process_count: int = 9,
    prefix: str | None = None,
) -> dict[str, Any]:
    """Uploads each file of the artifact folder to ``bucket_uri`` (where it stays) and makes
    the model's artifact a description of those objects (the reference's
    ``modelOSSReferenceDescription``); returns the description."""
    model_id = model_id_of(dsc_model)
    bucket, namespace, base = parse_bucket_uri(bucket_uri)
    require_bucket(bucket_uri, auth=auth)
    folder = local_path(artifact_dir)
    key = f"{base}{prefix or model_id}/"
    with _zipped(folder) as archive:
        staged = tempfile.mkdtemp(prefix="ocimodel-ref-", dir=work_dir())
        try:
            from ocimodel.artifact.archive import safe_extract

            safe_extract(archive, staged)  # the files with their manifest, as the zip has them
            objects = []
            for rel in sorted(iter_included(staged)):
                path = os.path.join(staged, *rel.split("/"))
                result = multipart.upload_file(
                    path,
                    f"oci://{bucket}@{namespace}/{key}{rel}",
                    auth=auth,
                    parallel_process_count=parallel_process_count,
                    progress=new_progress(f"Uploading {rel}"),
                )
                objects.append({"name": f"{key}{rel}", "version": None, "sizeInBytes": result.size})
            description = {
                "version": "1.0",
                "type": MODEL_DESCRIPTION_TYPE,
                "models": [
                    {
                        "namespace": namespace,
                        "bucketName": bucket,
                        "prefix": key,
                        "objects": objects,
                    }
                ],
            }
            path = os.path.join(staged, MODEL_DESCRIPTION_FILE)
            with open(path, "w", encoding="utf-8") as fh:
                json.dump(description, fh)
            catalog.upload_model_artifact(
                auth,
                model_id,
                path,
                content_disposition=f"attachment; filename={MODEL_DESCRIPTION_FILE}",
            )
        finally:
            shutil.rmtree(staged, ignore_errors=True)
    return description
