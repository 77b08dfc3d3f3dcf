"""Service-wide promises of ocimodel.local, checked operation by operation.

Every create honours opc-retry-token (same token, other body: 409; remembered 24 h), every
update and delete honours if-match, every list pages with opc-next-page, every response carries
opc-request-id, a stalled request body is answered at once, and the SDK's own schema is the
service's schema.
"""

from __future__ import annotations

import ast
import inspect
import re
import socket
import textwrap
import uuid
from concurrent.futures import ThreadPoolExecutor

import oci
import oci.data_science.models as dsm
import oci.object_storage.models as osm
import pytest
import requests
from deployment_support import ECHO_SCORE, create_model, deployment_details, zip_artifact
from oci.data_science import DataScienceClient
from oci.object_storage import ObjectStorageClient, UploadManager
from oci.pagination import list_call_get_all_results
from sdk_calls import NO_RETRY
from sdk_calls import service_error as _error

from ocimodel.local import sdkmodels
from ocimodel.local.core import BODY_IDLE_TIMEOUT_KEY
from ocimodel.local.operations import UNSIGNED_BODY_OPERATIONS, operation_of
from ocimodel.local.store import RETRY_TOKEN_TTL

STALE = "stale-etag"


@pytest.fixture(scope="module")
def ds(strict) -> DataScienceClient:
    """The no-retry client: every refusal must surface at once."""
    return strict


@pytest.fixture(scope="module")
def objects(local_oci) -> ObjectStorageClient:
    return local_oci.client(ObjectStorageClient, retry_strategy=NO_RETRY)


@pytest.fixture
def quick_stall(local_oci):
    """Give up on a stalled request body after half a second (restored afterwards)."""
    extras = local_oci.state.extras
    before = extras.get(BODY_IDLE_TIMEOUT_KEY)
    extras[BODY_IDLE_TIMEOUT_KEY] = 0.5
    yield
    if before is None:
        extras.pop(BODY_IDLE_TIMEOUT_KEY, None)
    else:
        extras[BODY_IDLE_TIMEOUT_KEY] = before


def _failed_deployment(local_oci, ds, compartment, project_id, model_id) -> str:
    """A deployment that the forced-failure fault sends to FAILED (no server is started)."""
    local_oci.add_faults({"deployment_failure": "no capacity in this test"})
    details = deployment_details(compartment, project_id, model_id)
    created = ds.create_model_deployment(details)
    wr = oci.wait_until(
        ds,
        ds.get_work_request(created.headers["opc-work-request-id"]),
        evaluate_response=lambda r: r.data.status in ("SUCCEEDED", "FAILED"),
        max_interval_seconds=0.1,
        max_wait_seconds=60,
    ).data
    assert wr.status == "FAILED"
    return created.data.id


@pytest.fixture
def served_model(ds, compartment, project, tmp_path) -> str:
    return create_model(
        ds, compartment, project.id, zip_artifact(tmp_path / "echo", {"score.py": ECHO_SCORE})
    )


# --- opc-retry-token -----------------------------------------------------------------------------


def _creates(ds, objects, namespace, compartment, project, model, bucket):
    """(name, create(token, variant)) for every create that carries opc-retry-token."""
    objects.put_object(namespace, bucket, "a.zip", b"first")
    objects.put_object(namespace, bucket, "b.zip", b"second")

    def export(token: str, variant: str):
        details = dsm.ExportModelArtifactDetails(
            artifact_export_details=dsm.ArtifactExportDetailsObjectStorage(
                artifact_source_type="ORACLE_OBJECT_STORAGE",
                namespace=namespace,
                source_bucket=bucket,
                source_object_name=f"{variant}.zip",
                source_region="us-ashburn-1",
            )
        )
        return ds.export_model_artifact(model.id, details, opc_retry_token=token)

    return {
        "project": lambda token, variant: ds.create_project(
            dsm.CreateProjectDetails(compartment_id=compartment, display_name=variant),
            opc_retry_token=token,
        ),
        "model": lambda token, variant: ds.create_model(
            dsm.CreateModelDetails(
                compartment_id=compartment, project_id=project.id, display_name=variant
            ),
            opc_retry_token=token,
        ),
        "model version set": lambda token, variant: ds.create_model_version_set(
            dsm.CreateModelVersionSetDetails(
                compartment_id=compartment, project_id=project.id, name=f"set-{token}-{variant}"
            ),
            opc_retry_token=token,
        ),
        "provenance": lambda token, variant: ds.create_model_provenance(
            model.id,
            dsm.CreateModelProvenanceDetails(git_commit=variant),
            opc_retry_token=token,
        ),
        "export": export,
    }


CREATES = ["project", "model", "model version set", "provenance", "export"]


@pytest.mark.parametrize("kind", CREATES)
def test_every_create_replays_its_token_and_refuses_another_body(
    ds, objects, namespace, compartment, project, model, bucket, kind
):
    create = _creates(ds, objects, namespace, compartment, project, model, bucket)[kind]
    token = uuid.uuid4().hex
    first = create(token, "a")
    again = create(token, "a")
    assert again.status == first.status
    assert again.data == first.data
    assert again.headers.get("opc-work-request-id") == first.headers.get("opc-work-request-id")
    assert again.headers["opc-request-id"] != first.headers["opc-request-id"]
    err = _error(create, token, "b")
    assert err.status == 409 and "opc-retry-token" in err.message
    assert err.headers["opc-request-id"]


def test_deployment_create_refuses_a_reused_token_with_another_body(
    local_oci, ds, compartment, project, served_model
):
    details = deployment_details(compartment, project.id, served_model)
    token = uuid.uuid4().hex
    local_oci.add_faults({"deployment_failure": "no capacity in this test"})
    try:
        first = ds.create_model_deployment(details, opc_retry_token=token)
        assert ds.create_model_deployment(details, opc_retry_token=token).data.id == first.data.id
        details.display_name = "another body"
        err = _error(ds.create_model_deployment, details, opc_retry_token=token)
    finally:
        local_oci.clear_faults()
    assert err.status == 409
    assert [d.id for d in ds.list_model_deployments(compartment).data] == [first.data.id]


def test_concurrent_creates_with_one_token_create_once(local_oci, compartment):
    token = uuid.uuid4().hex
    details = dsm.CreateProjectDetails(compartment_id=compartment, display_name="racing")
    clients = [local_oci.client(DataScienceClient, retry_strategy=NO_RETRY) for _ in range(6)]
    with ThreadPoolExecutor(len(clients)) as pool:
        ids = set(
            pool.map(lambda c: c.create_project(details, opc_retry_token=token).data.id, clients)
        )
    listed = clients[0].list_projects(compartment_id=compartment, display_name="racing").data
    assert len(ids) == 1 and [p.id for p in listed] == list(ids)


def test_retry_tokens_are_forgotten_after_24_hours(local_oci, ds, compartment):
    token = uuid.uuid4().hex
    first = ds.create_project(
        dsm.CreateProjectDetails(compartment_id=compartment, display_name="day one"),
        opc_retry_token=token,
    ).data
    store = local_oci.state.store
    store.execute(
        "UPDATE retry_tokens SET created = created - ? WHERE token = ?",
        (RETRY_TOKEN_TTL + 1, token),
    )
    later = ds.create_project(
        dsm.CreateProjectDetails(compartment_id=compartment, display_name="day two"),
        opc_retry_token=token,
    ).data
    assert later.id != first.id and later.display_name == "day two"


# --- if-match ------------------------------------------------------------------------------------


def test_stale_if_match_is_refused_by_every_data_science_update_and_delete(
    local_oci, ds, compartment, project, served_model
):
    mvs = ds.create_model_version_set(
        dsm.CreateModelVersionSetDetails(
            compartment_id=compartment, project_id=project.id, name=f"mvs-{uuid.uuid4().hex}"
        )
    ).data
    empty_project = ds.create_project(dsm.CreateProjectDetails(compartment_id=compartment)).data
    model = ds.create_model(
        dsm.CreateModelDetails(compartment_id=compartment, project_id=project.id)
    ).data
    ds.create_model_provenance(model.id, dsm.CreateModelProvenanceDetails(git_commit="c"))
    try:
        dep_id = _failed_deployment(local_oci, ds, compartment, project.id, served_model)
    finally:
        local_oci.clear_faults()
    update_dep = dsm.UpdateModelDeploymentDetails(display_name="renamed")
    calls = {
        "update_project": lambda: ds.update_project(
            empty_project.id, dsm.UpdateProjectDetails(description="x"), if_match=STALE
        ),
        "delete_project": lambda: ds.delete_project(empty_project.id, if_match=STALE),
        "update_model": lambda: ds.update_model(
            model.id, dsm.UpdateModelDetails(description="x"), if_match=STALE
        ),
        "activate_model": lambda: ds.activate_model(model.id, if_match=STALE),
        "deactivate_model": lambda: ds.deactivate_model(model.id, if_match=STALE),
        "delete_model": lambda: ds.delete_model(model.id, if_match=STALE),
        "update_model_provenance": lambda: ds.update_model_provenance(
            model.id, dsm.UpdateModelProvenanceDetails(git_commit="d"), if_match=STALE
        ),
        "create_model_artifact": lambda: ds.create_model_artifact(
            model.id, b"bytes", content_disposition="attachment; filename=a.zip", if_match=STALE
        ),
        "update_model_version_set": lambda: ds.update_model_version_set(
            mvs.id, dsm.UpdateModelVersionSetDetails(description="x"), if_match=STALE
        ),
        "delete_model_version_set": lambda: ds.delete_model_version_set(mvs.id, if_match=STALE),
        "update_model_deployment": lambda: ds.update_model_deployment(
            dep_id, update_dep, if_match=STALE
        ),
        "activate_model_deployment": lambda: ds.activate_model_deployment(dep_id, if_match=STALE),
        "deactivate_model_deployment": lambda: ds.deactivate_model_deployment(
            dep_id, if_match=STALE
        ),
        "delete_model_deployment": lambda: ds.delete_model_deployment(dep_id, if_match=STALE),
    }
    for name, call in calls.items():
        err = _error(call)
        assert (err.status, err.code) == (412, "PreconditionFailed"), name
    assert ds.get_project(empty_project.id).data.lifecycle_state == "ACTIVE"
    assert ds.get_model(model.id).data.lifecycle_state == "ACTIVE"
    assert ds.get_model_provenance(model.id).data.git_commit == "c"
    assert ds.get_model_version_set(mvs.id).data.lifecycle_state == "ACTIVE"
    assert ds.get_model_deployment(dep_id).data.display_name == "deployment-under-test"
    current = ds.get_model(model.id).headers["etag"]
    changed = ds.update_model(model.id, dsm.UpdateModelDetails(description="y"), if_match=current)
    assert changed.data.description == "y" and changed.headers["etag"] != current


def test_stale_if_match_is_refused_by_object_storage_writes(objects, namespace, bucket):
    objects.put_object(namespace, bucket, "kept", b"v1")
    for call in (
        lambda: objects.put_object(namespace, bucket, "kept", b"v2", if_match=STALE),
        lambda: objects.delete_object(namespace, bucket, "kept", if_match=STALE),
        lambda: objects.delete_bucket(namespace, bucket, if_match=STALE),
    ):
        err = _error(call)
        assert (err.status, err.code) == (412, "IfMatchFailed")
    assert objects.get_object(namespace, bucket, "kept").data.content == b"v1"


# --- paging --------------------------------------------------------------------------------------


def test_every_data_science_list_pages_with_opc_next_page(
    local_oci, ds, compartment, project, served_model
):
    for i in range(3):
        ds.create_model(
            dsm.CreateModelDetails(
                compartment_id=compartment, project_id=project.id, display_name=f"m{i}"
            )
        )
        ds.create_model_version_set(
            dsm.CreateModelVersionSetDetails(
                compartment_id=compartment, project_id=project.id, name=f"s{i}-{uuid.uuid4().hex}"
            )
        )
        ds.create_project(dsm.CreateProjectDetails(compartment_id=compartment))
    try:
        deployments = [
            _failed_deployment(local_oci, ds, compartment, project.id, served_model)
            for _ in range(3)
        ]
    finally:
        local_oci.clear_faults()
    wr_id = ds.list_work_requests(compartment, resource_id=deployments[0]).data[0].id
    lists = {
        "list_projects": (ds.list_projects, (), {"compartment_id": compartment}),
        "list_models": (ds.list_models, (), {"compartment_id": compartment}),
        "list_model_version_sets": (
            ds.list_model_version_sets,
            (),
            {"compartment_id": compartment},
        ),
        "list_model_deployments": (
            ds.list_model_deployments,
            (),
            {"compartment_id": compartment},
        ),
        "list_work_requests": (ds.list_work_requests, (), {"compartment_id": compartment}),
        "list_work_request_logs": (ds.list_work_request_logs, (wr_id,), {}),
    }
    for name, (fn, args, kwargs) in lists.items():
        first = fn(*args, limit=1, **kwargs)
        assert len(first.data) == 1 and first.headers.get("opc-next-page"), name
        everything = list_call_get_all_results(fn, *args, limit=1, **kwargs).data
        ids = [getattr(item, "id", None) or item.message for item in everything]
        assert len(ids) >= 2 and len(set(ids)) == len(ids), name
        last = fn(*args, limit=1000, **kwargs)
        assert "opc-next-page" not in last.headers, name


def test_every_object_storage_list_pages(local_oci, objects, namespace, bucket):
    compartment = f"ocid1.compartment.oc1..{uuid.uuid4().hex}"
    for i in range(3):
        details = osm.CreateBucketDetails(name=f"page-{i}-{uuid.uuid4().hex[:8]}")
        details.compartment_id = compartment
        objects.create_bucket(namespace, details)
    first = objects.list_buckets(namespace, compartment, limit=2)
    assert len(first.data) == 2 and first.headers["opc-next-page"]
    assert len(list_call_get_all_results(objects.list_buckets, namespace, compartment).data) == 3

    upload_ids = []
    for i in range(3):
        upload = objects.create_multipart_upload(
            namespace, bucket, osm.CreateMultipartUploadDetails(object=f"big-{i}")
        ).data
        upload_ids.append(upload.upload_id)
    for num in (1, 2, 3):
        objects.upload_part(namespace, bucket, "big-0", upload_ids[0], num, b"x" * num)
    first = objects.list_multipart_uploads(namespace, bucket, limit=2)
    assert len(first.data) == 2 and first.headers["opc-next-page"]
    every = list_call_get_all_results(objects.list_multipart_uploads, namespace, bucket, limit=2)
    assert sorted(u.upload_id for u in every.data) == sorted(upload_ids)
    parts = objects.list_multipart_upload_parts(namespace, bucket, "big-0", upload_ids[0], limit=2)
    assert [p.part_number for p in parts.data] == [1, 2] and parts.headers["opc-next-page"]
    every = list_call_get_all_results(
        objects.list_multipart_upload_parts, namespace, bucket, "big-0", upload_ids[0], limit=2
    )
    assert [p.size for p in every.data] == [1, 2, 3]
    for i, upload_id in enumerate(upload_ids):
        objects.abort_multipart_upload(namespace, bucket, f"big-{i}", upload_id)


# --- request ids and error shapes ----------------------------------------------------------------


def test_every_response_carries_an_opc_request_id(local_oci, objects, namespace, bucket):
    session = requests.Session()
    session.trust_env = False
    base = local_oci.endpoint
    signer = local_oci.signer()
    objects.put_object(namespace, bucket, "o", b"data")
    etag = objects.head_object(namespace, bucket, "o").headers["etag"]
    answers = {
        "unsigned": session.get(f"{base}/n"),
        "unknown route": session.get(f"{base}/20190101/nowhere", auth=signer),
        "wrong method": session.patch(f"{base}/20190101/projects", auth=signer, json={}),
        "bad json": session.post(
            f"{base}/20190101/projects",
            auth=signer,
            data=b"{not json",
            headers={"content-type": "application/json"},
        ),
        "head": session.head(f"{base}/n/{namespace}/b/{bucket}/o/o", auth=signer),
        "not modified": session.get(
            f"{base}/n/{namespace}/b/{bucket}/o/o", auth=signer, headers={"if-none-match": etag}
        ),
        "get": session.get(f"{base}/n/{namespace}/b/{bucket}/o/o", auth=signer),
        "range": session.get(
            f"{base}/n/{namespace}/b/{bucket}/o/o", auth=signer, headers={"range": "bytes=9-"}
        ),
        "delete": session.delete(f"{base}/n/{namespace}/b/{bucket}/o/o", auth=signer),
        "missing": session.get(f"{base}/n/{namespace}/b/{bucket}/o/o", auth=signer),
    }
    session.close()
    statuses = {name: resp.status_code for name, resp in answers.items()}
    assert statuses == {
        "unsigned": 401,
        "unknown route": 404,
        "wrong method": 405,
        "bad json": 400,
        "head": 200,
        "not modified": 304,
        "get": 200,
        "range": 416,
        "delete": 204,
        "missing": 404,
    }
    for name, resp in answers.items():
        assert resp.headers.get("opc-request-id"), name
    for name in ("unsigned", "unknown route", "wrong method", "bad json", "range", "missing"):
        assert set(answers[name].json()) == {"code", "message"}, name
    assert answers["unknown route"].json()["code"] == "NotAuthorizedOrNotFound"
    assert "/20190101/nowhere" in answers["unknown route"].json()["message"]


# --- stalled bodies ------------------------------------------------------------------------------


def _send_headers_only(local_oci, method: str, path: str, declared: int, **headers: str) -> str:
    """Send a signed request that declares ``declared`` body bytes and sends none; the answer."""
    url = local_oci.endpoint + path
    prepared = requests.Request(
        method, url, headers={"content-type": "application/octet-stream", **headers}
    ).prepare()
    local_oci.signer()(prepared, enforce_content_headers=False)
    prepared.headers["content-length"] = str(declared)
    host, port = local_oci.endpoint.removeprefix("http://").split(":")
    lines = [f"{method} {prepared.path_url} HTTP/1.1", f"host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in prepared.headers.items() if k.lower() != "host"]
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer.decode(errors="replace")


def test_a_body_that_never_comes_is_answered_at_once(
    local_oci, quick_stall, objects, namespace, bucket, ds, model
):
    upload = objects.create_multipart_upload(
        namespace, bucket, osm.CreateMultipartUploadDetails(object="stalled")
    ).data
    paths = [
        ("PUT", f"/n/{namespace}/b/{bucket}/u/stalled?uploadId={upload.upload_id}&uploadPartNum=1"),
        ("PUT", f"/n/{namespace}/b/{bucket}/o/stalled"),
        ("POST", f"/20190101/models/{model.id}/artifact"),
    ]
    for method, path in paths:
        answer = _send_headers_only(local_oci, method, path, 1 << 20)
        assert answer.startswith("HTTP/1.1 400"), (path, answer[:200])
        assert "opc-request-id" in answer.lower()
        assert re.search(r"stopped after 0 bytes of the 1048576 declared", answer), answer
    assert (
        objects.list_multipart_upload_parts(namespace, bucket, "stalled", upload.upload_id).data
        == []
    )
    assert _error(objects.head_object, namespace, bucket, "stalled").status == 404
    assert _error(ds.head_model_artifact, model.id).status == 404


@pytest.mark.timeout(45)
def test_sdk_part_retry_with_an_unrewound_body_fails_fast_with_the_reason(
    local_oci, quick_stall, objects, namespace, bucket, tmp_path, fast_retry
):
    """The SDK's own retry of upload_part re-sends the part reader without rewinding it.

    The retried request announces the part's length and sends nothing. The service says so
    and closes that connection, so the next part, sent on a fresh connection, is stored; before,
    the next part's bytes were read as the rest of the stalled body and it waited for the
    client's 60 s read timeout (hence the test's timeout).
    """
    src = tmp_path / "parts.bin"
    src.write_bytes(bytes(range(256)) * 4096 * 2)
    local_oci.set_faults({"operation": "upload_part", "status": 503, "count": 1})
    retrying = local_oci.client(ObjectStorageClient, retry_strategy=fast_retry)
    try:
        err = _error(
            UploadManager(retrying, allow_parallel_uploads=False).upload_file,
            namespace,
            bucket,
            "parts.bin",
            str(src),
            part_size=1 << 20,
        )
    finally:
        local_oci.clear_faults()
    assert (err.status, err.code) == (400, "InvalidParameter")
    assert "rewind" in err.message
    [upload] = objects.list_multipart_uploads(namespace, bucket).data
    parts = objects.list_multipart_upload_parts(namespace, bucket, "parts.bin", upload.upload_id)
    assert [p.part_number for p in parts.data] == [2]
    assert retrying.get_namespace().data == namespace


# --- the SDK's schema is the service's -----------------------------------------------------------


def _sdk_unsigned_body_operations() -> dict[str, tuple[str, str]]:
    """{operation: (method, resource path)} of every SDK operation sent with an unsigned body."""
    found = {}
    for client_cls in (ObjectStorageClient, DataScienceClient):
        for name, fn in inspect.getmembers(client_cls, inspect.isfunction):
            source = textwrap.dedent(inspect.getsource(fn))
            if "enforce_content_headers=False" not in source:
                continue
            values = {
                node.targets[0].id: node.value.value
                for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.Assign)
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Constant)
            }
            if values["method"] in ("POST", "PUT", "PATCH"):
                found[name] = (values["method"], values["resource_path"])
    return found


def _concrete(resource_path: str, client_cls_name: str) -> str:
    base = "/20190101" if client_cls_name == "ds" else ""
    return base + re.sub(r"\{[^}]+\}", "x1", resource_path)


def test_unsigned_body_allowlist_is_exactly_the_sdks():
    sdk = _sdk_unsigned_body_operations()
    assert set(sdk) == UNSIGNED_BODY_OPERATIONS
    for name, (method, path) in sdk.items():
        where = "os" if path.startswith("/n/") else "ds"
        assert operation_of(method, _concrete(path, where)) == name, name


def test_responses_use_only_the_sdks_field_names(
    local_oci, objects, namespace, bucket, ds, compartment, project, model
):
    session = requests.Session()
    session.trust_env = False
    signer = local_oci.signer()
    base = local_oci.endpoint
    upload = objects.create_multipart_upload(
        namespace, bucket, osm.CreateMultipartUploadDetails(object="shape")
    ).data
    objects.upload_part(namespace, bucket, "shape", upload.upload_id, 1, b"part")
    mvs = ds.create_model_version_set(
        dsm.CreateModelVersionSetDetails(
            compartment_id=compartment, project_id=project.id, name=f"shape-{uuid.uuid4().hex}"
        )
    ).data
    b = f"{base}/n/{namespace}/b/{bucket}"
    tenancy = local_oci.config["tenancy"]
    ds_base = f"{base}/20190101"
    checks = [
        (f"{b}", osm.Bucket, False),
        (f"{base}/n/{namespace}/b?compartmentId={tenancy}", osm.BucketSummary, True),
        (f"{b}/u", osm.MultipartUpload, True),
        (f"{b}/u/shape?uploadId={upload.upload_id}", osm.MultipartUploadPartSummary, True),
        (f"{ds_base}/projects/{project.id}", dsm.Project, False),
        (f"{ds_base}/models/{model.id}", dsm.Model, False),
        (f"{ds_base}/models?compartmentId={compartment}", dsm.ModelSummary, True),
        (f"{ds_base}/modelVersionSets/{mvs.id}", dsm.ModelVersionSet, False),
    ]
    for url, model_cls, listed in checks:
        resp = session.get(url, auth=signer)
        assert resp.status_code == 200, (url, resp.text)
        items = resp.json() if listed else [resp.json()]
        assert items, url
        allowed = set(sdkmodels.wire_names(model_cls))
        for item in items:
            assert set(item) <= allowed, (model_cls.__name__, set(item) - allowed)
    listing = session.get(f"{b}/o?fields=name,size,md5,etag,timeCreated", auth=signer).json()
    assert set(listing) <= set(sdkmodels.wire_names(osm.ListObjects))
    session.close()
    objects.abort_multipart_upload(namespace, bucket, "shape", upload.upload_id)
