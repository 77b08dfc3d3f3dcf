"""Saving a prepared artifact to the model catalog of the local service, with the real SDK."""

from __future__ import annotations

import os

import pytest

from ocimodel.errors import IntrospectionNotPassed
from ocimodel.oci import catalog
from ocimodel.oci.storage import BucketNotFoundError
from ocimodel.pipeline import prepare_artifact
from ocimodel.save import (
    SAVE_TAG,
    MissingCompartmentError,
    MissingProjectError,
    SaveError,
    SaveSpec,
    save_model,
)

SLUG = "generalml_p311_cpu_x86_64_v1"


@pytest.fixture
def prepared(local_env, iris, tmp_path):
    estimator, X, y = iris
    folder = tmp_path / "art"
    prepare_artifact(estimator, str(folder), inference_conda_env=SLUG, X_sample=X.head(20))
    return str(folder)


def _models_tagged(ds, compartment, project_id, identity_tag):
    return [
        m
        for m in ds.list_models(compartment_id=compartment, project_id=project_id).data
        if m.lifecycle_state == "ACTIVE" and m.freeform_tags.get(SAVE_TAG) == identity_tag
    ]


def test_small_save_creates_one_model_with_its_artifact_and_a_rerun_converges(
    prepared, catalog_env, ds, tmp_path
):
    spec = SaveSpec(display_name="iris", description="a pipeline", freeform_tags={"team": "a"})
    saved = save_model(prepared, spec)
    assert saved.created and saved.uploaded
    model = saved.model
    assert model.display_name == "iris" and model.freeform_tags["team"] == "a"
    assert {m.key for m in model.custom_metadata_list} >= {"ModelFileName", "SlugName"}
    assert model.input_schema and "sepal length (cm)" in model.input_schema
    info = catalog.artifact_info(None, saved.model_id)
    assert info is not None and info.size > 1000
    provenance = ds.get_model_provenance(saved.model_id).data
    assert provenance.script_dir == prepared

    again = save_model(prepared, spec)
    assert again.model_id == saved.model_id and not again.created and not again.uploaded
    tag = model.freeform_tags[SAVE_TAG]
    assert len(_models_tagged(ds, *catalog_env, tag)) == 1

    dest = tmp_path / "download.zip"
    catalog.download_model_artifact(None, saved.model_id, str(dest))
    import zipfile

    names = zipfile.ZipFile(dest).namelist()
    assert {"score.py", "runtime.yaml", "model.pkl", "ocimodel-manifest.json"} <= set(names)


def test_large_save_goes_through_the_bucket_and_leaves_no_object(
    prepared, catalog_env, bucket, namespace, client
):
    uri = f"oci://{bucket}@{namespace}/staging/"
    saved = save_model(prepared, SaveSpec(display_name="big", bucket_uri=uri))
    assert catalog.artifact_info(None, saved.model_id) is not None
    left = client.list_objects(namespace, bucket).data.objects
    assert left == []


def test_bad_inputs_fail_before_anything_is_created(
    prepared, local_env, catalog_env, ds, monkeypatch
):
    compartment, project_id = catalog_env
    before = len(ds.list_models(compartment_id=compartment).data)
    with pytest.raises(BucketNotFoundError, match="no-such-bucket"):
        save_model(prepared, SaveSpec(bucket_uri="oci://no-such-bucket@ns/x/"))
    with pytest.raises(SaveError, match="bogus_field"):
        save_model(prepared, SaveSpec.of(bogus_field=1))
    os.remove(os.path.join(prepared, "score.py"))
    with open(os.path.join(prepared, "score.py"), "w") as fh:
        fh.write("def predict(data):\n    return data\n")
    with pytest.raises(IntrospectionNotPassed, match="score_load_model"):
        save_model(prepared, SaveSpec())
    monkeypatch.delenv("PROJECT_COMPARTMENT_OCID")
    with pytest.raises(MissingCompartmentError, match="compartment_id"):
        save_model(prepared, SaveSpec(ignore_introspection=True))
    monkeypatch.setenv("PROJECT_COMPARTMENT_OCID", compartment)
    monkeypatch.delenv("PROJECT_OCID")
    with pytest.raises(MissingProjectError, match="project_id"):
        save_model(prepared, SaveSpec(ignore_introspection=True))
    assert len(ds.list_models(compartment_id=compartment).data) == before


def test_a_model_saved_by_reference_keeps_its_files_in_the_bucket_and_loads_back(
    prepared, catalog_env, bucket, namespace, client, tmp_path
):
    from ocimodel.artifact.downloader import fetch_artifact

    uri = f"oci://{bucket}@{namespace}/models/"
    saved = save_model(prepared, SaveSpec(bucket_uri=uri, model_by_reference=True))
    keys = {m.key: m.value for m in saved.model.custom_metadata_list}
    assert keys["modelDescription"] == "true"
    names = {o.name.rsplit("/", 1)[-1] for o in client.list_objects(namespace, bucket).data.objects}
    assert {"score.py", "runtime.yaml", "model.pkl", "ocimodel-manifest.json"} <= names
    back = tmp_path / "back"
    fetch_artifact(saved.model_id, str(back))
    original = os.path.join(prepared, "model.pkl")
    with open(original, "rb") as a, open(back / "model.pkl", "rb") as b:
        assert a.read() == b.read()


def test_more_bad_inputs_leave_nothing_behind(prepared, catalog_env, ds, bucket, namespace, client):
    from ocimodel.oci.auth import OCIAuth, OCIAuthError
    from ocimodel.oci.version_sets import ModelVersionSetNotFoundError

    compartment, _ = catalog_env
    with pytest.raises(ModelVersionSetNotFoundError, match="no-such-set"):
        save_model(prepared, SaveSpec(model_version_set="no-such-set"))
    client.put_object(namespace, bucket, "taken.zip", b"someone else's")
    from ocimodel.artifact.uploader import ArtifactUploadError, LargeArtifactUploader

    uploader = LargeArtifactUploader(
        None,
        prepared,
        bucket_uri=f"oci://{bucket}@{namespace}/",
        overwrite_existing_artifact=False,
        object_name="taken.zip",
    )
    with pytest.raises(ArtifactUploadError, match="overwrite_existing_artifact"):
        uploader.check()
    import json

    from ocimodel.errors import MetadataSizeTooLarge
    from ocimodel.layout import METADATA_FILE

    path = os.path.join(prepared, METADATA_FILE)
    with open(path) as fh:
        doc = json.load(fh)
    original = json.dumps(doc)
    doc["metadata_custom"]["metadata"] += [
        {"key": f"k{i}", "value": "v" * 250, "description": "", "category": "Other"}
        for i in range(150)
    ]  # written around the budget check that add() makes, as a stale or edited file could be
    with open(path, "w") as fh:
        json.dump(doc, fh)
    with pytest.raises((MetadataSizeTooLarge, ValueError), match="32000|budget|metadata"):
        save_model(prepared, SaveSpec())
    with open(path, "w") as fh:
        fh.write(original)
    with pytest.raises(SaveError, match="model_by_reference"):
        save_model(prepared, SaveSpec(model_by_reference=True))
    wrong = OCIAuth.from_key(
        tenancy="ocid1.tenancy.oc1..nobody",
        user="ocid1.user.oc1..nobody",
        fingerprint="00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff",
        key_content=_fresh_key_pem(),
        region="us-ashburn-1",
    )
    with pytest.raises((OCIAuthError, Exception)) as refused:
        save_model(prepared, SaveSpec(), auth=wrong)
    assert "401" in str(refused.value) or "NotAuthenticated" in str(refused.value)
    assert ds.list_models(compartment_id=compartment).data == []


def _fresh_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
