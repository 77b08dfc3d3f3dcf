"""The reference's artifact downloaders: a model's artifact from the catalog to a folder.

:class:`SmallArtifactDownloader` streams the artifact from the catalog. A large one goes
through Object Storage (:class:`LargeArtifactDownloader`): the catalog copies it to
``bucket_uri`` (``import_model_artifact``, waited on), it is downloaded in parallel ranges and
the temporary object removed. Either way the zip is extracted safely into a staging folder and
its sha256 manifest checked before anything lands in ``target_dir`` — and so before anything in
it is unpickled.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from ocimodel.artifact.archive import make_zip
from ocimodel.artifact.source import place_artifact
from ocimodel.artifact.uploader import (
    MODEL_DESCRIPTION_FILE,
    MODEL_DESCRIPTION_TYPE,
    SMALL_ARTIFACT_LIMIT,
    model_id_of,
    work_dir,
)
from ocimodel.errors import OcimodelError
from ocimodel.oci import catalog
from ocimodel.oci.download import download_file
from ocimodel.oci.multipart import delete_object
from ocimodel.progress import new_progress

if TYPE_CHECKING:
    from ocimodel.oci.auth import AuthLike


class ArtifactDownloadError(ValueError, OcimodelError):
    """An artifact cannot be downloaded as asked."""


class ArtifactDownloader(ABC):
    """Downloads the artifact of ``dsc_model`` (its OCID, or the catalog's model object) into
    ``target_dir``; existing files there are replaced only with ``force_overwrite``."""

    def __init__(self, dsc_model: Any, target_dir: str, force_overwrite: bool | None = False):
        self.dsc_model = dsc_model
        self.target_dir = target_dir
        self.force_overwrite = bool(force_overwrite)
        self.auth: AuthLike = None

    @property
    def model_id(self) -> str:
        """The OCID of the model whose artifact is downloaded."""
        return model_id_of(self.dsc_model)

    def download(self) -> str:
        """Downloads and places the artifact; returns ``target_dir``'s absolute path."""
        if not self.target_dir:
            raise ArtifactDownloadError(
                "target_dir is empty; pass the folder the artifact should be extracted into."
            )
        scratch = tempfile.mkdtemp(prefix="ocimodel-download-", dir=work_dir())
        try:
            archive = os.path.join(scratch, "artifact.zip")
            self._fetch(archive)
            return place_artifact(
                archive, self.target_dir, force_overwrite=self.force_overwrite, verify=True
            )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    @abstractmethod
    def _fetch(self, archive: str) -> None:
        """Writes the artifact zip to ``archive``."""


class SmallArtifactDownloader(ArtifactDownloader):
    """Streams the artifact straight from the model catalog."""

    def __init__(
        self,
        dsc_model: Any,
        target_dir: str,
        force_overwrite: bool | None = False,
        *,
        auth: AuthLike = None,
    ):
        super().__init__(dsc_model, target_dir, force_overwrite)
        self.auth = auth

    def _fetch(self, archive: str) -> None:
        progress = new_progress(f"Downloading the artifact of {self.model_id}")
        catalog.download_model_artifact(self.auth, self.model_id, archive, progress=progress)


class LargeArtifactDownloader(ArtifactDownloader):
    """Has the catalog copy the artifact to ``bucket_uri``, downloads it in parallel ranges,
    then removes the copy (``remove_existing_artifact``)."""

    def __init__(
        self,
        dsc_model: Any,
        target_dir: str,
        auth: AuthLike = None,
        force_overwrite: bool | None = False,
        region: str | None = None,
        bucket_uri: str | None = None,
        overwrite_existing_artifact: bool | None = True,
        remove_existing_artifact: bool | None = True,
        model_file_description: dict | None = None,
        *,
        parallel_process_count: int = 9,
        max_wait_time: float = 1200,
        poll_interval: float = 10,
    ):
        super().__init__(dsc_model, target_dir, force_overwrite)
        self.model_file_description = model_file_description
        if not bucket_uri and model_file_description is None:
            raise ArtifactDownloadError(
                "A large artifact comes through Object Storage: pass "
                "bucket_uri='oci://<bucket>@<namespace>/<prefix>/'."
            )
        self.auth = auth
        self.region = region
        self.bucket_uri = bucket_uri
        self.overwrite_existing_artifact = bool(overwrite_existing_artifact)
        self.remove_existing_artifact = bool(remove_existing_artifact)
        self.parallel_process_count = parallel_process_count
        self.max_wait_time, self.poll_interval = max_wait_time, poll_interval

    def _fetch(self, archive: str) -> None:
        model_id = self.model_id
        if self.model_file_description is not None:
            self._fetch_described(archive)
            return
        uri = catalog.import_model_artifact(
            self.auth,
            model_id,
            self.bucket_uri,
            region=self.region,
            max_wait_time=self.max_wait_time,
            poll_interval=self.poll_interval,
            progress=new_progress(f"Copying the artifact of {model_id} to {self.bucket_uri}"),
        )
        try:
            download_file(
                uri,
                archive,
                auth=self.auth,
                parallel_process_count=self.parallel_process_count,
                progress=new_progress(f"Downloading the artifact of {model_id}"),
            )
        finally:
            if self.remove_existing_artifact:
                with contextlib.suppress(Exception):
                    delete_object(uri, auth=self.auth, missing_ok=True)

    def _fetch_described(self, archive: str) -> None:
        """Downloads the objects of a model saved by reference and zips them as its artifact."""
        folder = os.path.join(os.path.dirname(archive), "described")
        _fetch_described_into(
            self.model_file_description or {}, folder, self.auth, self.parallel_process_count
        )
        make_zip(folder, archive, force_overwrite=True)


def fetch_artifact(
    model_id: str,
    target_dir: str,
    *,
    auth: AuthLike = None,
    force_overwrite: bool = False,
    bucket_uri: str | None = None,
    remove_existing_artifact: bool = True,
    region: str | None = None,
    parallel_process_count: int = 9,
) -> str:
    """Downloads a model's artifact into ``target_dir``: through ``bucket_uri`` when given,
    else straight from the catalog (which an artifact over 2 GiB cannot use)."""
    if bucket_uri:
        downloader: ArtifactDownloader = LargeArtifactDownloader(
            model_id,
            target_dir,
            auth=auth,
            force_overwrite=force_overwrite,
            region=region,
            bucket_uri=bucket_uri,
            remove_existing_artifact=remove_existing_artifact,
            parallel_process_count=parallel_process_count,
        )
    else:
        info = catalog.artifact_info(auth, model_id)
        if info is not None and info.filename == MODEL_DESCRIPTION_FILE:
            description = _read_description(model_id, auth)
            return LargeArtifactDownloader(
                model_id,
                target_dir,
                auth=auth,
                force_overwrite=force_overwrite,
                model_file_description=description,
                parallel_process_count=parallel_process_count,
            ).download()
        if info is not None and info.size and info.size > SMALL_ARTIFACT_LIMIT:
            raise ArtifactDownloadError(
                f"The artifact of {model_id} is {info.size / 1024**3:.1f} GiB; pass "
                "bucket_uri='oci://<bucket>@<namespace>/<prefix>/' to download it through "
                "Object Storage."
            )
        downloader = SmallArtifactDownloader(
            model_id, target_dir, force_overwrite=force_overwrite, auth=auth
        )
    return downloader.download()


def _described_objects(description: dict[str, Any]) -> list[tuple[str, str]]:
    """``(object URI, path in the artifact)`` of every object a model description lists."""
    if description.get("type") != MODEL_DESCRIPTION_TYPE:
        raise ArtifactDownloadError(
            f"model_file_description has type {description.get('type')!r}, not "
            f"{MODEL_DESCRIPTION_TYPE!r}; pass the description the model was saved with."
        )
    found = []
    for model in description.get("models") or []:
        prefix = model.get("prefix") or ""
        for obj in model.get("objects") or []:
            name = obj["name"]
            rel = name[len(prefix) :] if name.startswith(prefix) else name.rsplit("/", 1)[-1]
            found.append((f"oci://{model['bucketName']}@{model['namespace']}/{name}", rel))
    return found


def _fetch_described_into(
    description: dict[str, Any], folder: str, auth: AuthLike, count: int
) -> None:
    for uri, rel in _described_objects(description):
        os.makedirs(os.path.dirname(os.path.join(folder, *rel.split("/"))), exist_ok=True)
        download_file(
            uri,
            os.path.join(folder, *rel.split("/")),
            auth=auth,
            parallel_process_count=count,
            progress=new_progress(f"Downloading {rel}"),
        )


def _read_description(model_id: str, auth: AuthLike) -> dict[str, Any]:
    """The model description a model saved by reference holds as its artifact."""
    import json

    scratch = tempfile.mkdtemp(prefix="ocimodel-desc-", dir=work_dir())
    try:
        path = os.path.join(scratch, MODEL_DESCRIPTION_FILE)
        catalog.download_model_artifact(auth, model_id, path)
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
