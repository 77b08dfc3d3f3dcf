"""Names of the OCI operations the local service serves, recognised by method and path.

Used to allow unsigned bodies for exactly the operations the SDK sends them for, and to target
fault rules by operation name (``get_model``, ``upload_part``...).
"""

from __future__ import annotations

import re
from functools import lru_cache

_SEG = r"[^/]+"
_NS = rf"/n/{_SEG}"
_B = rf"{_NS}/b/{_SEG}"
_DS = "/20190101"

# (operation, method, path regex); first match wins, so specific paths come first.
_TABLE: list[tuple[str, str, str]] = [
    # Object Storage
    ("get_namespace", "GET", r"/n/?"),
    ("get_namespace_metadata", "GET", _NS),
    ("list_buckets", "GET", rf"{_NS}/b/?"),
    ("create_bucket", "POST", rf"{_NS}/b/?"),
    ("get_bucket", "GET", _B),
    ("head_bucket", "HEAD", _B),
    ("update_bucket", "POST", _B),
    ("delete_bucket", "DELETE", _B),
    ("copy_object", "POST", rf"{_B}/actions/copyObject"),
    ("rename_object", "POST", rf"{_B}/actions/renameObject"),
    ("list_objects", "GET", rf"{_B}/o/?"),
    ("put_object", "PUT", rf"{_B}/o/.+"),
    ("get_object", "GET", rf"{_B}/o/.+"),
    ("head_object", "HEAD", rf"{_B}/o/.+"),
    ("delete_object", "DELETE", rf"{_B}/o/.+"),
    ("list_multipart_uploads", "GET", rf"{_B}/u/?"),
    ("create_multipart_upload", "POST", rf"{_B}/u/?"),
    ("upload_part", "PUT", rf"{_B}/u/.+"),
    ("commit_multipart_upload", "POST", rf"{_B}/u/.+"),
    ("list_multipart_upload_parts", "GET", rf"{_B}/u/.+"),
    ("abort_multipart_upload", "DELETE", rf"{_B}/u/.+"),
    # Data Science: models
    ("create_model_artifact", "POST", rf"{_DS}/models/{_SEG}/artifact"),
    ("get_model_artifact_content", "GET", rf"{_DS}/models/{_SEG}/artifact/content"),
    ("head_model_artifact", "HEAD", rf"{_DS}/models/{_SEG}/artifact/content"),
    ("export_model_artifact", "POST", rf"{_DS}/models/{_SEG}/actions/exportArtifact"),
    ("import_model_artifact", "POST", rf"{_DS}/models/{_SEG}/actions/importArtifact"),
    ("activate_model", "POST", rf"{_DS}/models/{_SEG}/actions/activate"),
    ("deactivate_model", "POST", rf"{_DS}/models/{_SEG}/actions/deactivate"),
    ("create_model_provenance", "POST", rf"{_DS}/models/{_SEG}/provenance"),
    ("get_model_provenance", "GET", rf"{_DS}/models/{_SEG}/provenance"),
    ("update_model_provenance", "PUT", rf"{_DS}/models/{_SEG}/provenance"),
    (
        "create_model_custom_metadatum_artifact",
        "POST",
        rf"{_DS}/models/{_SEG}/customMetadata/{_SEG}/artifact",
    ),
    (
        "update_model_custom_metadatum_artifact",
        "PUT",
        rf"{_DS}/models/{_SEG}/customMetadata/{_SEG}/artifact",
    ),
    (
        "create_model_defined_metadatum_artifact",
        "POST",
        rf"{_DS}/models/{_SEG}/definedMetadata/{_SEG}/artifact",
    ),
    (
        "update_model_defined_metadatum_artifact",
        "PUT",
        rf"{_DS}/models/{_SEG}/definedMetadata/{_SEG}/artifact",
    ),
    ("create_model", "POST", rf"{_DS}/models/?"),
    ("list_models", "GET", rf"{_DS}/models/?"),
    ("get_model", "GET", rf"{_DS}/models/{_SEG}"),
    ("update_model", "PUT", rf"{_DS}/models/{_SEG}"),
    ("delete_model", "DELETE", rf"{_DS}/models/{_SEG}"),
    ("create_model_group_artifact", "POST", rf"{_DS}/modelGroups/{_SEG}/artifact"),
    ("create_job_artifact", "POST", rf"{_DS}/jobs/{_SEG}/artifact"),
    ("create_step_artifact", "POST", rf"{_DS}/pipelines/{_SEG}/steps/{_SEG}/artifact"),
    # Data Science: projects, version sets
    ("create_project", "POST", rf"{_DS}/projects/?"),
    ("list_projects", "GET", rf"{_DS}/projects/?"),
    ("get_project", "GET", rf"{_DS}/projects/{_SEG}"),
    ("update_project", "PUT", rf"{_DS}/projects/{_SEG}"),
    ("delete_project", "DELETE", rf"{_DS}/projects/{_SEG}"),
    ("create_model_version_set", "POST", rf"{_DS}/modelVersionSets/?"),
    ("list_model_version_sets", "GET", rf"{_DS}/modelVersionSets/?"),
    ("get_model_version_set", "GET", rf"{_DS}/modelVersionSets/{_SEG}"),
    ("update_model_version_set", "PUT", rf"{_DS}/modelVersionSets/{_SEG}"),
    ("delete_model_version_set", "DELETE", rf"{_DS}/modelVersionSets/{_SEG}"),
    # Data Science: model deployments, work requests
    (
        "activate_model_deployment",
        "POST",
        rf"{_DS}/modelDeployments/{_SEG}/actions/activate",
    ),
    (
        "deactivate_model_deployment",
        "POST",
        rf"{_DS}/modelDeployments/{_SEG}/actions/deactivate",
    ),
    ("create_model_deployment", "POST", rf"{_DS}/modelDeployments/?"),
    ("list_model_deployments", "GET", rf"{_DS}/modelDeployments/?"),
    ("get_model_deployment", "GET", rf"{_DS}/modelDeployments/{_SEG}"),
    ("update_model_deployment", "PUT", rf"{_DS}/modelDeployments/{_SEG}"),
    ("delete_model_deployment", "DELETE", rf"{_DS}/modelDeployments/{_SEG}"),
    ("list_work_request_errors", "GET", rf"{_DS}/workRequests/{_SEG}/errors"),
    ("list_work_request_logs", "GET", rf"{_DS}/workRequests/{_SEG}/logs"),
    ("list_work_requests", "GET", rf"{_DS}/workRequests/?"),
    ("get_work_request", "GET", rf"{_DS}/workRequests/{_SEG}"),
    # Model deployment inference
    ("predict", "POST", r"/ocid1\.[^/]+/predict"),
    ("predict_with_response_stream", "POST", r"/ocid1\.[^/]+/predictWithResponseStream"),
]

_COMPILED = [(op, method, re.compile(rf"^{rx}$")) for op, method, rx in _TABLE]

OPERATIONS: frozenset[str] = frozenset(op for op, _, _ in _TABLE)

# Operations the SDK generates with enforce_content_headers=False: their bodies are not signed.
UNSIGNED_BODY_OPERATIONS: frozenset[str] = frozenset(
    {
        "put_object",
        "upload_part",
        "create_model_artifact",
        "create_job_artifact",
        "create_step_artifact",
        "create_model_group_artifact",
        "create_model_custom_metadatum_artifact",
        "update_model_custom_metadatum_artifact",
        "create_model_defined_metadatum_artifact",
        "update_model_defined_metadatum_artifact",
    }
)


@lru_cache(maxsize=4096)
def _lookup(method: str, path: str) -> str | None:
    for op, op_method, rx in _COMPILED:
        if op_method == method and rx.match(path):
            return op
    return None


def operation_of(method: str, path: str) -> str | None:
    """The SDK operation name of a request (``get_model``), or None when not recognised."""
    return _lookup(method.upper(), path)


def has_unsigned_body(method: str, path: str) -> bool:
    """True when the SDK sends this request's body without signing it."""
    return operation_of(method, path) in UNSIGNED_BODY_OPERATIONS
