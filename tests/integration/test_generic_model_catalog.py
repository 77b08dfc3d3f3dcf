"""GenericModel's catalog side against the local service: save, load back, update, delete."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ocimodel import GenericModel
from ocimodel.artifact.manifest import ManifestError
from ocimodel.errors import ArtifactsNotAvailableError
from ocimodel.oci import catalog
from ocimodel.summary import ModelState, SummaryDetail

SLUG = "generalml_p311_cpu_x86_64_v1"


@pytest.fixture
def saved(catalog_env, tmp_path):
    class Toy:
        """The reference's docstring estimator (defined here, so it pickles by value)."""

        def predict(self, x):
            return np.asarray(x) ** 2

    model = GenericModel(estimator=Toy(), artifact_dir=str(tmp_path / "toy"))
    model.prepare(inference_conda_env=SLUG, model_file_name="toy.pkl", force_overwrite=True)
    model.save(display_name="toy", freeform_tags={"kind": "toy"})
    return model


def _status(model, detail):
    df = model.summary_status()
    return df.loc[df["Details"] == detail, "Status"].item()


def test_save_sets_the_model_id_and_the_summary_row(saved):
    assert saved.model_id.startswith("ocid1.datasciencemodel")
    assert saved.dsc_model.display_name == "toy"
    assert _status(saved, SummaryDetail.UPLOADED) == ModelState.DONE.value
    assert catalog.artifact_info(None, saved.model_id) is not None


def test_from_model_catalog_downloads_verifies_and_predicts(saved, tmp_path):
    loaded = GenericModel.from_model_catalog(saved.model_id, artifact_dir=str(tmp_path / "back"))
    assert loaded.model_id == saved.model_id
    assert loaded.verify([[1, 2]])["prediction"] == [[1, 4]]
    with (
        open(os.path.join(saved.artifact_dir, "toy.pkl"), "rb") as a,
        open(os.path.join(loaded.artifact_dir, "toy.pkl"), "rb") as b,
    ):
        assert a.read() == b.read()
    meta_only = GenericModel.from_model_catalog(saved.model_id, download_artifact=False)
    assert meta_only.model_id == saved.model_id and meta_only.dsc_model.display_name == "toy"


def test_a_corrupted_download_is_refused_before_anything_is_unpickled(saved, tmp_path):
    with open(os.path.join(saved.artifact_dir, "toy.pkl"), "r+b") as fh:
        fh.write(b"X")  # the zip below carries the manifest of the good file
    import zipfile

    from ocimodel.artifact.archive import make_zip
    from ocimodel.artifact.uploader import manifest_files

    good = tmp_path / "good.zip"
    model = GenericModel.from_model_catalog(saved.model_id, artifact_dir=str(tmp_path / "a"))
    make_zip(model.artifact_dir, str(good), manifest_files=manifest_files(model.artifact_dir))
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, data[:-1] + b"Z" if item.filename == "toy.pkl" else data)
    other = catalog.create_model(
        None,
        {
            "compartment_id": saved.dsc_model.compartment_id,
            "project_id": saved.dsc_model.project_id,
        },
        retry_token="corrupted-download-test",
    )
    catalog.upload_model_artifact(None, other.id, str(bad))
    target = tmp_path / "refused"
    with pytest.raises(ManifestError, match="toy.pkl"):
        GenericModel.from_model_catalog(other.id, artifact_dir=str(target))
    assert not target.exists() or os.listdir(target) == []


def test_update_changes_metadata_only(saved):
    saved.update(display_name="renamed", description="squared", freeform_tags={"kind": "b"})
    model = catalog.get_model(None, saved.model_id)
    assert (model.display_name, model.description) == ("renamed", "squared")
    assert model.freeform_tags["kind"] == "b"


def test_delete_on_an_instance_and_on_the_class(saved, catalog_env, tmp_path):
    model_id = saved.model_id
    saved.delete()
    assert catalog.get_model(None, model_id).lifecycle_state == "DELETED"
    assert saved.model_id is None
    with pytest.raises(ArtifactsNotAvailableError, match="model_id"):
        GenericModel.delete()


def test_upload_artifact_to_a_folder_and_to_a_bucket(saved, tmp_path, bucket, namespace, client):
    saved.upload_artifact(str(tmp_path / "zips"))
    assert os.path.isfile(tmp_path / "zips" / f"{saved.model_id}.zip")
    saved.upload_artifact(f"oci://{bucket}@{namespace}/exports/")
    names = [o.name for o in client.list_objects(namespace, bucket).data.objects]
    assert names == [f"exports/{saved.model_id}.zip"]
