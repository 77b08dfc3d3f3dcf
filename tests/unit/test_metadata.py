"""Taxonomy and custom metadata: validation, the catalog's limits at their boundaries,
size measurement equal to what the oci SDK sends, serialization and framework detection."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from ocimodel.errors import (
    ArtifactFileExistsError,
    MetadataDescriptionTooLong,
    MetadataSizeTooLarge,
    MetadataValueTooLong,
    OcimodelError,
)
from ocimodel.metadata import (
    HYPERPARAMETERS_FILE_NAME,
    METADATA_SIZE_LIMIT,
    Framework,
    InvalidMetadataType,
    InvalidMetadataValue,
    MetadataCustomCategory,
    MetadataCustomKeys,
    MetadataItemExists,
    MetadataItemNotFound,
    MetadataTaxonomyKeys,
    ModelCustomMetadata,
    ModelCustomMetadataItem,
    ModelTaxonomyMetadata,
    ModelTaxonomyMetadataItem,
    UseCaseType,
    catalog_metadata_payload,
    catalog_metadata_size,
    detect_framework,
    json_safe,
    place_hyperparameters,
    populate_taxonomy,
    validate_catalog_metadata_size,
)

# --- enumerations -----------------------------------------------------------------------------


def test_enumerations_match_the_reference():
    assert len(UseCaseType.values()) == 14
    assert UseCaseType.DIMENSIONALITY_REDUCTION == "dimensionality_reduction/representation"
    assert len(Framework.values()) == 28
    assert Framework.SCIKIT_LEARN == "scikit-learn" and Framework.H20 == "h2o"
    assert "pyspark" in Framework and "spark" not in Framework
    assert MetadataTaxonomyKeys.values() == [
        "UseCaseType",
        "Framework",
        "FrameworkVersion",
        "Algorithm",
        "Hyperparameters",
        "ArtifactTestResults",
    ]
    assert MetadataCustomCategory.values() == [
        "Other",
        "Performance",
        "Training and Validation Datasets",
        "Training Environment",
        "Training Profile",
    ]
    assert json.dumps({"f": Framework.XGBOOST}) == '{"f": "xgboost"}'


# --- custom metadata: add and its errors ---------------------------------------------------


def test_custom_add_get_remove_clear():
    md = ModelCustomMetadata()
    assert md.isempty()
    md.add("format", "pickle")
    md.add("note", "important note", description="some description", category="Performance")
    assert md.keys == ("format", "note")
    assert md["format"].category == MetadataCustomCategory.OTHER
    md["format"].description = "changed"
    assert md.get("format").description == "changed"
    assert md.get("missing", None) is None
    md.remove("format")
    assert md.keys == ("note",) and "format" not in md
    md.clear()
    assert md.isempty() and len(md) == 0


def test_custom_add_existing_needs_replace():
    md = ModelCustomMetadata()
    md.add("k", "v1")
    with pytest.raises(MetadataItemExists, match="replace=True"):
        md.add("k", "v2")
    assert md["k"].value == "v1"
    md.add("k", "v2", replace=True)
    assert md["k"].value == "v2"


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"key": 5, "value": "v"}, InvalidMetadataType, "must be a string"),
        ({"key": "", "value": "v"}, InvalidMetadataValue, "empty"),
        ({"key": "   ", "value": "v"}, InvalidMetadataValue, "empty"),
        ({"key": "k", "value": ""}, InvalidMetadataValue, "empty"),
        ({"key": "k", "value": None}, InvalidMetadataValue, "empty"),
        ({"key": "k", "value": object()}, InvalidMetadataValue, "cannot be stored as JSON"),
        ({"key": "k", "value": float("nan")}, InvalidMetadataValue, "cannot be stored as JSON"),
        ({"key": "k", "value": "v", "description": 3}, InvalidMetadataType, "description"),
        ({"key": "k", "value": "v", "category": "Misc"}, InvalidMetadataValue, "Performance"),
    ],
)
def test_custom_add_rejects_bad_input(kwargs, error, words):
    md = ModelCustomMetadata()
    with pytest.raises(error, match=words) as info:
        md.add(**kwargs)
    assert isinstance(info.value, OcimodelError)
    assert md.isempty()


def test_get_unknown_key_names_known_keys():
    md = ModelCustomMetadata()
    md.add("alpha", "1")
    with pytest.raises(MetadataItemNotFound, match="'nope'.*'alpha'"):
        md.get("nope")
    with pytest.raises(MetadataItemNotFound):
        md.remove("nope")
    with pytest.raises(InvalidMetadataType):
        md.get("")


def test_non_string_values_are_sent_as_json():
    md = ModelCustomMetadata()
    md.add("scores", {"auc": 0.9, "f1": [0.5, 0.6]})
    md.add("count", 42)
    items = {i["key"]: i["value"] for i in md.catalog_items()}
    assert items == {"scores": '{"auc": 0.9, "f1": [0.5, 0.6]}', "count": "42"}


# --- limits at their boundaries ---------------------------------------------------------------


def test_key_length_boundary():
    md = ModelCustomMetadata()
    md.add("k" * 255, "v")
    with pytest.raises(MetadataValueTooLong, match="key .* 256 characters.*at most 255") as info:
        md.add("q" * 256, "v")
    assert info.value.length == 256 and info.value.limit == 255
    assert md.keys == ("k" * 255,)


def test_value_length_boundary():
    md = ModelCustomMetadata()
    md.add("ok", "v" * 255)
    with pytest.raises(MetadataValueTooLong, match="value of 'bad' is 256 characters"):
        md.add("bad", "v" * 256)
    assert "bad" not in md
    # A non-string value counts by its JSON text: '"' + 253 chars + '"' is 255.
    md.add("json_ok", ["x" * 249])  # ["xxx..."] -> 2 + 2 + 249 = 253 chars
    with pytest.raises(MetadataValueTooLong):
        md.add("json_bad", ["x" * 253])  # 257 chars of JSON
    with pytest.raises(MetadataValueTooLong):
        md["ok"].value = "v" * 256
    assert md["ok"].value == "v" * 255


def test_description_length_boundary():
    md = ModelCustomMetadata()
    md.add("ok", "v", description="d" * 255)
    with pytest.raises(MetadataDescriptionTooLong, match="256 characters.*at most 255"):
        md.add("bad", "v", description="d" * 256)
    with pytest.raises(MetadataDescriptionTooLong):
        md["ok"].description = "d" * 256
    assert md["ok"].description == "d" * 255
    with pytest.raises(MetadataDescriptionTooLong):
        ModelCustomMetadataItem("x", "v", description="d" * 256)


def _fill_to(md: ModelCustomMetadata, target: int, taxonomy=None) -> None:
    """Add items until the total catalog size is exactly ``target`` bytes."""
    n = 0
    while True:
        md.add("last", "v", replace=True)
        room = target - catalog_metadata_size(md, taxonomy)
        if room <= 254:
            md.add("last", "v" * (room + 1), replace=True)
            return
        md.remove("last")
        md.add(f"k{n:04d}", "v" * min(255, room - 100))
        n += 1


def test_total_size_boundary_32000_ok_32001_fails():
    md = ModelCustomMetadata()
    _fill_to(md, METADATA_SIZE_LIMIT)
    assert catalog_metadata_size(md) == 32000
    assert validate_catalog_metadata_size(md) == 32000
    before = md.to_dict()
    with pytest.raises(MetadataSizeTooLarge, match="32001 bytes.*at most 32000") as info:
        md["last"].value = md["last"].value + "v"
    assert info.value.size == 32001
    assert md.to_dict() == before
    with pytest.raises(MetadataSizeTooLarge):
        md.add("one_more", "x")
    assert "one_more" not in md
    with pytest.raises(MetadataSizeTooLarge):
        md["last"].description = "d"
    assert md.to_dict() == before


def test_total_size_is_shared_with_linked_taxonomy():
    md, tax = ModelCustomMetadata(), ModelTaxonomyMetadata()
    md.link(tax)
    tax.update_values(Hyperparameters={"alpha": "a" * 3000}, Algorithm="Ridge")
    reserve = tax.budget_reserve()
    assert reserve > 0  # ArtifactTestResults is unset, so its room is kept free
    _fill_to(md, METADATA_SIZE_LIMIT - reserve, tax)
    assert catalog_metadata_size(md, tax) + reserve == md.budget_size() == 32000
    with pytest.raises(MetadataSizeTooLarge):
        md.add("x", "y")
    with pytest.raises(MetadataSizeTooLarge):
        tax["Algorithm"].value = "RidgeCV"
    assert tax["Algorithm"].value == "Ridge"
    tax["Algorithm"].value = "Lasso"  # same length still fits
    with pytest.raises(InvalidMetadataValue, match="one custom and one taxonomy"):
        md.link(ModelCustomMetadata())
    # linking two collections that only fit apart is refused, and leaves them unlinked
    full, other_tax = ModelCustomMetadata(), ModelTaxonomyMetadata()
    _fill_to(full, METADATA_SIZE_LIMIT - 100)
    other_tax.update_values(Algorithm="A" * 200)
    with pytest.raises(MetadataSizeTooLarge):
        full.link(other_tax)
    full.add("still_unlinked", "x")
    assert other_tax.total_size() == catalog_metadata_size(None, other_tax)


def test_size_equals_the_bytes_the_oci_sdk_sends():
    """catalog_metadata_size is exactly the JSON the oci SDK serializes for those fields."""
    import oci
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    config = {
        "user": "ocid1.user.oc1..u",
        "tenancy": "ocid1.tenancy.oc1..t",
        "fingerprint": ":".join(["ab"] * 16),
        "region": "us-ashburn-1",
        "key_content": pem,
    }
    client = oci.data_science.DataScienceClient(config)

    md, tax = ModelCustomMetadata(), ModelTaxonomyMetadata()
    md.link(tax)
    md.add("naïve €", "ünïcode ✓ value", description="déjà vu", category="Performance")
    md.add("dict", {"a": [1, 2.5, None, True]})
    md.add("reset_me", "x")
    md["reset_me"].reset()  # no value: not sent
    populate_taxonomy(tax, _sklearn_model(), use_case_type=UseCaseType.REGRESSION)
    tax.update_values(ArtifactTestResults={"runtime_env_path": {"success": True}})

    payload = catalog_metadata_payload(md, tax)
    details = oci.data_science.models.CreateModelDetails(
        custom_metadata_list=[
            oci.data_science.models.Metadata(**d) for d in payload["customMetadataList"]
        ],
        defined_metadata_list=[
            oci.data_science.models.Metadata(**d) for d in payload["definedMetadataList"]
        ],
    )
    body = client.base_client.sanitize_for_serialization(details)
    sent = json.dumps({k: body[k] for k in ("customMetadataList", "definedMetadataList")}).encode(
        "utf-8"
    )
    assert catalog_metadata_size(md, tax) == len(sent)
    assert md.total_size() == tax.total_size() == len(sent)
    assert [d["key"] for d in payload["customMetadataList"]] == ["naïve €", "dict"]
    # non-ASCII is escaped on the wire, so it counts 6 bytes per character
    assert len(sent) > len(json.dumps(body, ensure_ascii=False).encode())


# --- taxonomy ---------------------------------------------------------------------------------


def test_taxonomy_has_the_fixed_keys_and_validates_enumerations():
    tax = ModelTaxonomyMetadata()
    assert tax.keys == tuple(MetadataTaxonomyKeys.values())
    tax["UseCaseType"].value = UseCaseType.BINARY_CLASSIFICATION
    with pytest.raises(InvalidMetadataValue, match="'binary'.*binary_classification"):
        tax["UseCaseType"].update("binary")
    with pytest.raises(InvalidMetadataValue, match="'sklearn' is not a valid Framework"):
        tax["Framework"].value = "sklearn"
    with pytest.raises(InvalidMetadataType, match="FrameworkVersion.*string"):
        tax["FrameworkVersion"].value = 1.2
    with pytest.raises(InvalidMetadataType, match="Hyperparameters.*dict"):
        tax["Hyperparameters"].value = [1, 2]
    with pytest.raises(InvalidMetadataValue, match="JSON"):
        tax["Hyperparameters"].value = {"f": object()}
    with pytest.raises(InvalidMetadataValue, match="not a taxonomy key"):
        ModelTaxonomyMetadataItem("Colour", "red")
    with pytest.raises(MetadataItemNotFound):
        tax.update_values(Colour="red")
    with pytest.raises(InvalidMetadataValue):
        tax.update_values(Algorithm="A", Framework="nope")
    assert tax["Algorithm"].value is None  # all or nothing
    assert tax["UseCaseType"].value == "binary_classification"


def test_taxonomy_reset_dataframe_and_roundtrip():
    tax = ModelTaxonomyMetadata()
    tax.update_values(UseCaseType="regression", Framework="xgboost", Hyperparameters={"a": 1})
    df = tax.to_dataframe()
    assert list(df.columns) == ["Key", "Value"]
    assert df.set_index("Key").loc["Framework", "Value"] == "xgboost"
    again = ModelTaxonomyMetadata.from_dict(json.loads(tax.to_json()))
    assert again == tax
    assert {d["key"] for d in tax.catalog_items()} == {
        "UseCaseType",
        "Framework",
        "Hyperparameters",
    }
    tax.reset()
    assert all(item.value is None for item in tax)
    assert tax.catalog_items() == []
    with pytest.raises(InvalidMetadataValue, match="metadata"):
        ModelTaxonomyMetadata.from_dict({"data": []})
    with pytest.raises(InvalidMetadataValue, match="not a taxonomy key"):
        ModelTaxonomyMetadata.from_dict({"metadata": [{"key": "Bad", "value": 1}]})
    with pytest.raises(InvalidMetadataValue, match="not a valid UseCaseType"):
        ModelTaxonomyMetadata.from_dict({"metadata": [{"key": "UseCaseType", "value": "x"}]})


# --- custom: serialization --------------------------------------------------------------------


def test_custom_roundtrip_yaml_dataframe_reset():
    md = ModelCustomMetadata()
    md.add("format", "pickle", description="fmt", category="Training Profile")
    md.add("n", 3)
    assert ModelCustomMetadata.from_dict(md.to_dict()) == md
    assert ModelCustomMetadata.from_dict(json.loads(md.to_json())) == md
    assert "key: format" in md.to_yaml() and "category: Training Profile" in repr(md)
    df = md.to_dataframe()
    assert list(df.columns) == ["Key", "Value", "Description", "Category"]
    assert df.iloc[0].tolist() == ["format", "pickle", "fmt", "Training Profile"]
    md.reset()
    assert md.keys == ("format", "n") and md["format"].value is None
    assert md["format"].description is None and md.catalog_items() == []
    assert list(ModelCustomMetadata().to_dataframe().columns) == list(df.columns)


def test_custom_from_dict_rejects_bad_data():
    with pytest.raises(InvalidMetadataValue, match="metadata"):
        ModelCustomMetadata.from_dict(["not", "a", "dict"])
    with pytest.raises(InvalidMetadataValue, match="'key'"):
        ModelCustomMetadata.from_dict({"metadata": [{"value": "no key"}]})
    with pytest.raises(MetadataValueTooLong):
        ModelCustomMetadata.from_dict({"metadata": [{"key": "k", "value": "v" * 256}]})
    with pytest.raises(MetadataItemExists):
        ModelCustomMetadata.from_dict({"metadata": [{"key": "k", "value": "1"}] * 2})
    big = [{"key": f"k{i}", "value": "v" * 255} for i in range(200)]
    with pytest.raises(MetadataSizeTooLarge):
        ModelCustomMetadata.from_dict({"metadata": big})


def test_item_update_validates_before_changing():
    item = ModelCustomMetadataItem("k", "v", "d", "Other")
    with pytest.raises(InvalidMetadataValue):
        item.update("new", "new d", "Nope")
    assert item.to_dict() == {"key": "k", "value": "v", "description": "d", "category": "Other"}
    item.update("new", "new d", "Performance")
    assert item.value == "new" and item.category == "Performance"
    assert ModelCustomMetadataItem.from_dict(item.to_dict()) == item
    assert item.size() == len(json.dumps(item.catalog_item()).encode())


def test_training_and_validation_data():
    md = ModelCustomMetadata()
    md.set_training_data("oci://bucket@ns/train.csv", "1000 rows")
    md.set_validation_data("oci://bucket@ns/valid.csv")
    assert md[MetadataCustomKeys.TRAINING_DATASET].value == "oci://bucket@ns/train.csv"
    assert md[MetadataCustomKeys.TRAINING_DATASET_SIZE].value == "1000 rows"
    assert MetadataCustomKeys.VALIDATION_DATASET_SIZE not in md
    cat = md[MetadataCustomKeys.VALIDATION_DATASET].category
    assert cat == MetadataCustomCategory.TRAINING_AND_VALIDATION_DATASETS
    with pytest.raises(InvalidMetadataType):
        md.set_training_data(None)
    with pytest.raises(MetadataValueTooLong):
        md.set_validation_data("oci://b@n/new.csv", "x" * 256)
    # all or nothing: the path was not replaced either
    assert md[MetadataCustomKeys.VALIDATION_DATASET].value == "oci://bucket@ns/valid.csv"


def test_to_json_file_local(tmp_path):
    md = ModelCustomMetadata()
    md.add("k", "v")
    written = md.to_json_file(str(tmp_path))
    assert written.endswith("metadata_custom.json")
    assert ModelCustomMetadata.from_dict(json.loads(open(written).read())) == md
    target = tmp_path / "sub" / "custom.json"
    assert md.to_json_file(str(target)) == str(target)
    assert json.loads(target.read_text()) == md.to_dict()
    item_file = md["k"].to_json_file(str(tmp_path) + "/")
    assert item_file.endswith("/k.json") and json.loads(open(item_file).read()) == "v"
    tax = ModelTaxonomyMetadata()
    assert tax.to_json_file(str(tmp_path)).endswith("metadata_taxonomy.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "k.json",
        "metadata_custom.json",
        "metadata_taxonomy.json",
        "sub",
    ]
    with pytest.raises(InvalidMetadataType, match="file_path"):
        md.to_json_file("")


# --- framework detection ----------------------------------------------------------------------


def _sklearn_model():
    from sklearn.linear_model import Ridge

    return Ridge(alpha=0.5)


def test_detect_sklearn_estimator():
    import sklearn

    info = detect_framework(_sklearn_model())
    assert info.framework == Framework.SCIKIT_LEARN
    assert info.framework_version == sklearn.__version__
    assert info.algorithm == "Ridge"
    assert info.hyperparameters["alpha"] == 0.5
    assert json.loads(json.dumps(info.hyperparameters)) == info.hyperparameters


def test_detect_pipeline_hyperparameters_are_json_safe():
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = Pipeline([("scale", StandardScaler()), ("rf", RandomForestClassifier(max_depth=3))])
    info = detect_framework(pipe)
    assert info.algorithm == "Pipeline"
    steps = info.hyperparameters["steps"]
    assert steps[0][0] == "scale" and "StandardScaler" in steps[0][1]
    assert "RandomForestClassifier(max_depth=3)" in steps[1][1]
    json.dumps(info.hyperparameters, allow_nan=False)
    assert json_safe({"a": np.float32(1.5), "b": float("nan"), "t": np.float64, 1: (1, 2)}) == {
        "a": 1.5,
        "b": "nan",
        "t": "numpy.float64",
        "1": [1, 2],
    }


class PlainModel:
    def predict(self, x):
        return x

    def get_params(self, deep=False):
        return {"a": 1}


def test_plain_object_leaves_taxonomy_empty():
    info = detect_framework(PlainModel())
    assert (info.framework, info.framework_version, info.algorithm, info.hyperparameters) == (
        None,
        None,
        None,
        None,
    )
    tax = ModelTaxonomyMetadata()
    populate_taxonomy(tax, PlainModel(), use_case_type="other")
    assert tax["UseCaseType"].value == "other"
    assert tax["Framework"].value is None and tax["Hyperparameters"].value is None


def test_detection_does_not_import_sklearn_for_plain_objects():
    code = (
        "import sys\n"
        "from ocimodel.metadata import detect_framework, ModelTaxonomyMetadata, populate_taxonomy\n"
        "class M: pass\n"
        "info = detect_framework(M())\n"
        "populate_taxonomy(ModelTaxonomyMetadata(), M())\n"
        "assert info.framework is None\n"
        "assert 'sklearn' not in sys.modules, 'sklearn was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_subclass_of_sklearn_estimator_is_detected():
    from sklearn.linear_model import Ridge

    class MyRidge(Ridge):
        pass

    info = detect_framework(MyRidge(alpha=2.0))
    assert info.framework == "scikit-learn" and info.algorithm == "MyRidge"


def test_populate_taxonomy_rejects_bad_use_case_without_changes():
    tax = ModelTaxonomyMetadata()
    populate_taxonomy(tax, _sklearn_model(), use_case_type="regression")
    before = tax.to_dict()
    with pytest.raises(InvalidMetadataValue, match="regresion"):
        populate_taxonomy(tax, PlainModel(), use_case_type="regresion")
    assert tax.to_dict() == before
    populate_taxonomy(tax, _sklearn_model())  # None keeps the use case
    assert tax["UseCaseType"].value == "regression"


# --- hyperparameters too large ----------------------------------------------------------------


class BigParams:
    """A scikit-learn-like estimator whose parameters are too large for the catalog."""

    __module__ = "sklearn.fake"

    def get_params(self, deep=False):
        return {f"p{i}": "x" * 100 for i in range(300)}


def test_large_hyperparameters_move_to_a_file(tmp_path):
    tax, md = ModelTaxonomyMetadata(), ModelCustomMetadata()
    tax.link(md)
    info = populate_taxonomy(tax, BigParams(), artifact_dir=str(tmp_path))
    assert tax["Hyperparameters"].value == {"file": HYPERPARAMETERS_FILE_NAME}
    stored = json.loads((tmp_path / HYPERPARAMETERS_FILE_NAME).read_text())
    assert stored == info.hyperparameters and len(stored) == 300
    assert catalog_metadata_size(md, tax) < 1000


def test_hyperparameters_that_fit_stay_inline_and_budget_counts(tmp_path):
    tax, md = ModelTaxonomyMetadata(), ModelCustomMetadata()
    tax.link(md)
    params = {f"p{i}": "x" * 100 for i in range(100)}  # ~11 KB: fits alone
    assert place_hyperparameters(tax, params, str(tmp_path)) is None
    assert tax["Hyperparameters"].value == params
    tax["Hyperparameters"].reset()
    _fill_to(md, 25000, tax)
    # now the same parameters would push the total past 32,000 bytes: they go to the file
    path = place_hyperparameters(tax, params, str(tmp_path))
    assert path == str(tmp_path / HYPERPARAMETERS_FILE_NAME)
    assert tax["Hyperparameters"].value == {"file": HYPERPARAMETERS_FILE_NAME}


def test_large_hyperparameters_without_artifact_dir_fail_cleanly(tmp_path):
    tax = ModelTaxonomyMetadata()
    with pytest.raises(InvalidMetadataValue, match="artifact_dir"):
        populate_taxonomy(tax, BigParams())
    assert tax["Framework"].value is None
    missing = tmp_path / "nope"
    with pytest.raises(InvalidMetadataType, match="not an existing folder"):
        place_hyperparameters(tax, BigParams().get_params(), str(missing))
    assert not missing.exists()


def test_pandas_dataframe_column_order_in_custom_dataframe():
    md = ModelCustomMetadata()
    for i in range(3):
        md.add(f"k{i}", f"v{i}")
    assert isinstance(md.to_dataframe(), pd.DataFrame)
    assert md.to_dataframe()["Key"].tolist() == ["k0", "k1", "k2"]


# --- to_json_file to object storage (local OCI service) -------------------------------------


def test_to_json_file_to_object_storage(local_oci, monkeypatch):
    import uuid

    import fsspec
    import oci

    from ocimodel.oci import auth as oci_auth

    for name, value in local_oci.env().items():
        monkeypatch.setenv(name, value)
    oci_auth.reset_auth()
    try:
        client = oci_auth.make_client(oci.object_storage.ObjectStorageClient)
        namespace = client.get_namespace().data
        bucket = f"metadata-{uuid.uuid4().hex[:10]}"
        client.create_bucket(
            namespace,
            oci.object_storage.models.CreateBucketDetails(
                name=bucket, compartment_id=local_oci.config["tenancy"]
            ),
        )
        md = ModelCustomMetadata()
        md.add("format", "pickle", description="how the model is stored")
        root = f"oci://{bucket}@{namespace}/meta/"
        # default auth, folder target
        written = md.to_json_file(root)
        assert written == root + "metadata_custom.json"
        # explicit fsspec storage options, file target
        options = oci_auth.storage_options()
        tax = ModelTaxonomyMetadata()
        tax.update_values(Framework="scikit-learn")
        tax.to_json_file(root + "tax.json", storage_options=options)
        fs = fsspec.filesystem("oci", skip_instance_cache=True, **options)
        with fs.open(root + "metadata_custom.json", "rb") as fh:
            assert ModelCustomMetadata.from_dict(json.load(fh)) == md
        with fs.open(root + "tax.json", "rb") as fh:
            assert ModelTaxonomyMetadata.from_dict(json.load(fh)) == tax
    finally:
        oci_auth.reset_auth()


def test_hyperparameters_file_converges_and_is_replaced_only_with_force(tmp_path):
    tax = ModelTaxonomyMetadata()
    params = BigParams().get_params()
    target = tmp_path / HYPERPARAMETERS_FILE_NAME
    target.write_text('{"mine": 1}')
    with pytest.raises(ArtifactFileExistsError, match=re.escape(str(target))):
        place_hyperparameters(tax, params, str(tmp_path))
    assert target.read_text() == '{"mine": 1}'
    assert tax["Hyperparameters"].value is None
    assert sorted(os.listdir(tmp_path)) == [HYPERPARAMETERS_FILE_NAME]
    assert place_hyperparameters(tax, params, str(tmp_path), force_overwrite=True)
    assert json.loads(target.read_text()) == params
    assert place_hyperparameters(tax, params, str(tmp_path)) == str(target)  # same bytes: kept


def test_prepare_budget_reserves_the_largest_artifact_test_results():
    """Metadata that passes while ArtifactTestResults is unset still fits after it is set."""
    from ocimodel.introspect import CASES, CATALOG_MESSAGE_MAX_CHARS, worst_case_test_results

    tax, md = ModelTaxonomyMetadata(), ModelCustomMetadata()
    md.link(tax)
    reserve = tax.budget_reserve()
    worst = worst_case_test_results()
    assert set(worst) == set(CASES)
    assert reserve > len(CASES) * CATALOG_MESSAGE_MAX_CHARS
    _fill_to(md, METADATA_SIZE_LIMIT - reserve, tax)
    assert md.budget_size() == METADATA_SIZE_LIMIT  # exactly at the limit: accepted
    with pytest.raises(MetadataSizeTooLarge, match="ArtifactTestResults"):
        md.add("one_more", "x")
    tax.update_values(ArtifactTestResults=worst)  # the largest value introspection can give
    assert catalog_metadata_size(md, tax) <= METADATA_SIZE_LIMIT
    assert tax.budget_reserve() == 0


def test_real_introspection_results_never_exceed_the_reserve(tmp_path):
    """Every check failing with long, quote- and unicode-laden values stays within budget."""
    from ocimodel.introspect import ModelIntrospect
    from ocimodel.metadata import ModelTaxonomyMetadataItem

    args = ", ".join(f"argument_{'é' * 20}_{i}" for i in range(40))
    (tmp_path / "score.py").write_text(f"def predict(x, {args}):\n    pass\n")
    weird = '"\\\\é€😀' * 300
    runtime = {
        "MODEL_ARTIFACT_VERSION": weird,
        "MODEL_DEPLOYMENT": {
            "INFERENCE_CONDA_ENV": {"INFERENCE_PYTHON_VERSION": weird, "INFERENCE_ENV_PATH": weird}
        },
    }
    import yaml

    (tmp_path / "runtime.yaml").write_text(yaml.safe_dump(runtime, allow_unicode=True))
    intro = ModelIntrospect(str(tmp_path), check_remote=False)
    intro.run()
    assert intro.failures >= 5
    tax = ModelTaxonomyMetadata()
    reserve = tax.budget_reserve()
    item = ModelTaxonomyMetadataItem("ArtifactTestResults", intro.to_dict())
    assert item.size() + len(", ") <= reserve
