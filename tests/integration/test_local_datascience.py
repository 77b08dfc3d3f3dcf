"""Projects, models, provenance and work requests of ocimodel.local, driven by the real SDK."""

from __future__ import annotations

import uuid

import oci
import oci.data_science.models as dsm
import pytest
from oci.data_science import DataScienceClient, DataScienceClientCompositeOperations
from sdk_calls import DONE
from sdk_calls import service_error as _error

from ocimodel.local import datascience
from ocimodel.local.server import LocalOCI


def _full_model_details(compartment: str, project_id: str) -> dsm.CreateModelDetails:
    return dsm.CreateModelDetails(
        compartment_id=compartment,
        project_id=project_id,
        display_name="full",
        description="every field",
        freeform_tags={"team": "ml"},
        defined_tags={"ops": {"cost": "42"}},
        custom_metadata_list=[
            dsm.Metadata(
                key="SlugName", value="generalml_p311", category="Other", description="conda env"
            )
        ],
        defined_metadata_list=[dsm.Metadata(key="Framework", value="scikit-learn")],
        input_schema='{"schema": [{"name": "x", "dtype": "float64"}]}',
        output_schema='{"schema": [{"name": "y", "dtype": "int64"}]}',
        retention_setting=dsm.RetentionSetting(archive_after_days=30, delete_after_days=90),
        backup_setting=dsm.BackupSetting(is_backup_enabled=False),
    )


# --- projects --------------------------------------------------------------------------------


def test_project_lifecycle_with_composite_operations(local_oci, ds, compartment):
    composite = DataScienceClientCompositeOperations(ds)
    created = composite.create_project_and_wait_for_state(
        dsm.CreateProjectDetails(compartment_id=compartment, display_name="p", description="d"),
        wait_for_states=[dsm.Project.LIFECYCLE_STATE_ACTIVE],
    ).data
    assert created.created_by == local_oci.config["user"]
    got = ds.get_project(created.id)
    assert got.data.description == "d" and got.headers["etag"]
    assert got.headers["opc-request-id"]

    updated = ds.update_project(
        created.id, dsm.UpdateProjectDetails(display_name="renamed"), if_match=got.headers["etag"]
    )
    assert updated.data.display_name == "renamed"
    assert updated.headers["etag"] != got.headers["etag"]
    listed = ds.list_projects(compartment_id=compartment, display_name="renamed").data
    assert [p.id for p in listed] == [created.id]

    result = composite.delete_project_and_wait_for_state(created.id, wait_for_states=DONE)
    assert result.data.status == dsm.WorkRequest.STATUS_SUCCEEDED
    assert result.data.operation_type == dsm.WorkRequest.OPERATION_TYPE_PROJECT_DELETE
    assert ds.get_project(created.id).data.lifecycle_state == dsm.Project.LIFECYCLE_STATE_DELETED
    assert ds.list_projects(compartment_id=compartment).data == []
    deleted = ds.list_projects(compartment_id=compartment, lifecycle_state="DELETED").data
    assert [p.id for p in deleted] == [created.id]


def test_project_with_models_cannot_be_deleted(strict, project, compartment):
    model = strict.create_model(
        dsm.CreateModelDetails(compartment_id=compartment, project_id=project.id)
    ).data
    err = _error(strict.delete_project, project.id)
    assert (err.status, err.code) == (409, "IncorrectState")
    strict.delete_model(model.id)
    strict.delete_project(project.id)


# --- models ----------------------------------------------------------------------------------


def test_create_model_with_every_field_round_trips(local_oci, ds, project, compartment):
    details = _full_model_details(compartment, project.id)
    created = ds.create_model(details)
    model = created.data
    assert created.headers["etag"] and created.headers["opc-request-id"]
    assert model.lifecycle_state == dsm.Model.LIFECYCLE_STATE_ACTIVE
    assert model.created_by == local_oci.config["user"]
    assert model.category == dsm.Model.CATEGORY_USER
    got = ds.get_model(model.id).data
    for attr in dsm.CreateModelDetails().swagger_types:
        expected = getattr(details, attr)
        actual = getattr(got, attr)
        if hasattr(expected, "swagger_types"):
            expected, actual = oci.util.to_dict(expected), oci.util.to_dict(actual)
        elif isinstance(expected, list):
            expected = [oci.util.to_dict(e) for e in expected]
            actual = [oci.util.to_dict(a) for a in actual]
        assert actual == expected, attr


def test_model_display_name_defaults_and_list_filters(ds, project, compartment):
    plain = ds.create_model(
        dsm.CreateModelDetails(compartment_id=compartment, project_id=project.id)
    ).data
    assert plain.display_name
    named = [
        ds.create_model(
            dsm.CreateModelDetails(
                compartment_id=compartment, project_id=project.id, display_name=f"m{i}"
            )
        ).data
        for i in range(3)
    ]
    ds.deactivate_model(named[1].id)

    ids = {m.id for m in ds.list_models(compartment_id=compartment).data}
    assert ids == {plain.id, *(m.id for m in named)}
    by_name = ds.list_models(compartment_id=compartment, display_name="m2").data
    assert [m.id for m in by_name] == [named[2].id]
    inactive = ds.list_models(compartment_id=compartment, lifecycle_state="INACTIVE").data
    assert [m.id for m in inactive] == [named[1].id]
    by_id = ds.list_models(compartment_id=compartment, id=named[0].id).data
    assert [m.id for m in by_id] == [named[0].id]
    by_project = ds.list_models(compartment_id=compartment, project_id=project.id).data
    assert len(by_project) == 4
    assert ds.list_models(compartment_id=compartment, project_id="ocid1.nope").data == []
    mine = ds.list_models(compartment_id=compartment, created_by=plain.created_by).data
    assert len(mine) == 4

    asc = ds.list_models(
        compartment_id=compartment,
        project_id=project.id,
        sort_by="displayName",
        sort_order="ASC",
        lifecycle_state="ACTIVE",
    ).data
    names = [m.display_name for m in asc]
    assert names == sorted(names)
    desc = ds.list_models(compartment_id=compartment, sort_by="timeCreated").data
    assert [m.time_created for m in desc] == sorted((m.time_created for m in desc), reverse=True)


def test_list_models_pages_with_opc_next_page(ds, project, compartment):
    made = {
        ds.create_model(
            dsm.CreateModelDetails(
                compartment_id=compartment, project_id=project.id, display_name=f"pg{i}"
            )
        ).data.id
        for i in range(5)
    }
    first = ds.list_models(compartment_id=compartment, limit=2)
    assert len(first.data) == 2 and first.has_next_page
    everything = oci.pagination.list_call_get_all_results(
        ds.list_models, compartment_id=compartment, limit=2
    ).data
    assert {m.id for m in everything} == made
    assert len(everything) == 5


def test_update_activate_deactivate_and_delete(ds, strict, project, compartment):
    model = ds.create_model(
        dsm.CreateModelDetails(compartment_id=compartment, project_id=project.id)
    ).data
    etag = ds.get_model(model.id).headers["etag"]
    stale = _error(
        strict.update_model, model.id, dsm.UpdateModelDetails(description="x"), if_match="bad"
    )
    assert stale.status == 412
    updated = strict.update_model(
        model.id,
        dsm.UpdateModelDetails(description="new", freeform_tags={"a": "b"}),
        if_match=etag,
    ).data
    assert (updated.description, updated.freeform_tags) == ("new", {"a": "b"})

    err = _error(strict.activate_model, model.id)
    assert (err.status, err.code) == (409, "IncorrectState")
    assert strict.deactivate_model(model.id).data.lifecycle_state == "INACTIVE"
    err = _error(strict.deactivate_model, model.id)
    assert (err.status, err.code) == (409, "IncorrectState")
    assert strict.activate_model(model.id).data.lifecycle_state == "ACTIVE"

    composite = DataScienceClientCompositeOperations(ds)
    composite.delete_model_and_wait_for_state(
        model.id, wait_for_states=[dsm.Model.LIFECYCLE_STATE_DELETED]
    )
    assert ds.get_model(model.id).data.lifecycle_state == "DELETED"
    for call in (strict.activate_model, strict.deactivate_model, strict.delete_model):
        err = _error(call, model.id)
        assert (err.status, err.code) == (409, "IncorrectState")
    err = _error(strict.update_model, model.id, dsm.UpdateModelDetails(description="late"))
    assert err.code == "IncorrectState"


def test_model_used_by_a_deployment_cannot_be_deleted_or_deactivated(
    local_oci, strict, project, compartment
):
    model = strict.create_model(
        dsm.CreateModelDetails(compartment_id=compartment, project_id=project.id)
    ).data
    extras = local_oci.state.extras
    previous = extras.get("model_in_use")
    extras["model_in_use"] = lambda mid: mid == model.id or bool(previous and previous(mid))
    try:
        for call in (strict.delete_model, strict.deactivate_model):
            err = _error(call, model.id)
            assert (err.status, err.code) == (409, "IncorrectState")
            assert "deployment" in err.message
    finally:
        if previous is None:
            extras.pop("model_in_use", None)
        else:
            extras["model_in_use"] = previous
    strict.delete_model(model.id)


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"projectId": "P"}, 400, "MissingParameter", "compartmentId"),
        ({"compartmentId": "C"}, 400, "MissingParameter", "projectId"),
        (
            {"compartmentId": "C", "projectId": "P", "displayNam": "x"},
            400,
            "InvalidParameter",
            "displayNam",
        ),
        (
            {"compartmentId": "C", "projectId": "P", "freeformTags": ["a"]},
            400,
            "InvalidParameter",
            "freeformTags",
        ),
        (
            {
                "compartmentId": "C",
                "projectId": "P",
                "customMetadataList": [{"key": "k", "value": "v" * 256}],
            },
            400,
            "InvalidParameter",
            "customMetadataList[0].value",
        ),
        (
            {
                "compartmentId": "C",
                "projectId": "P",
                "customMetadataList": [{"key": "k" * 256, "value": "v"}],
            },
            400,
            "InvalidParameter",
            "customMetadataList[0].key",
        ),
        (
            {
                "compartmentId": "C",
                "projectId": "P",
                "definedMetadataList": [{"key": "k", "value": "v", "description": "d" * 256}],
            },
            400,
            "InvalidParameter",
            "definedMetadataList[0].description",
        ),
        (
            {
                "compartmentId": "C",
                "projectId": "P",
                "customMetadataList": [{"key": f"k{i}", "value": "v" * 250} for i in range(130)],
            },
            400,
            "InvalidParameter",
            "customMetadataList",
        ),
        (
            {"compartmentId": "C", "projectId": "P", "inputSchema": "x" * 32001},
            400,
            "InvalidParameter",
            "inputSchema",
        ),
        (
            {
                "compartmentId": "C",
                "projectId": "P",
                "retentionSetting": {"customerNotificationType": "SHOUT"},
            },
            400,
            "InvalidParameter",
            "retentionSetting.customerNotificationType",
        ),
        (
            {"compartmentId": "C", "projectId": "ocid1.datascienceproject.oc1..none"},
            404,
            "NotAuthorizedOrNotFound",
            "Project",
        ),
    ],
)
def test_bad_model_bodies_are_rejected_naming_the_field(
    strict, project, compartment, body, status, code, field
):
    body = {
        k: {"C": compartment, "P": project.id}.get(v, v) if isinstance(v, str) else v
        for k, v in body.items()
    }
    err = _error(strict.create_model, body)
    assert (err.status, err.code) == (status, code)
    assert err.message.startswith(field)
    assert err.request_id
    assert strict.list_models(compartment_id=compartment).data == []


def test_list_requires_compartment_and_checks_enums(strict):
    err = _error(strict.list_models, compartment_id="")
    assert (err.status, err.code) == (400, "MissingParameter")
    assert "compartmentId" in err.message
    # the client checks enums itself; send the raw signed request to check the service does too
    for params, field in [
        ({"compartmentId": "c", "sortBy": "timeCreated"}, "sortBy"),
        ({"compartmentId": "c", "status": "DONE"}, "status"),
        ({"compartmentId": "c", "limit": "0"}, "limit"),
    ]:
        err = _error(
            strict.base_client.call_api,
            resource_path="/workRequests",
            method="GET",
            query_params=params,
            header_params={"accept": "application/json"},
        )
        assert (err.status, err.code) == (400, "InvalidParameter")
        assert err.message.startswith(field)


def test_retry_token_makes_create_idempotent(strict, project, compartment):
    details = dsm.CreateModelDetails(
        compartment_id=compartment, project_id=project.id, display_name="once"
    )
    token = uuid.uuid4().hex
    first = strict.create_model(details, opc_retry_token=token).data
    again = strict.create_model(details, opc_retry_token=token).data
    assert first.id == again.id
    assert len(strict.list_models(compartment_id=compartment).data) == 1
    other = dsm.CreateModelDetails(
        compartment_id=compartment, project_id=project.id, display_name="twice"
    )
    err = _error(strict.create_model, other, opc_retry_token=token)
    assert err.status == 409
    # the same token for another operation is independent
    proj = strict.create_project(
        dsm.CreateProjectDetails(compartment_id=compartment), opc_retry_token=token
    ).data
    assert proj.id != project.id


def test_other_tenancy_sees_nothing(local_oci, ds, project, compartment):
    model = ds.create_model(
        dsm.CreateModelDetails(compartment_id=compartment, project_id=project.id)
    ).data
    ds.create_model_provenance(model.id, dsm.CreateModelProvenanceDetails(git_branch="main"))
    other = local_oci.client(
        DataScienceClient,
        config=local_oci.add_user(),
        retry_strategy=oci.retry.NoneRetryStrategy(),
    )
    calls = [
        (other.get_project, project.id),
        (other.get_model, model.id),
        (other.get_model_provenance, model.id),
        (other.deactivate_model, model.id),
        (other.delete_model, model.id),
        (other.update_model, model.id, dsm.UpdateModelDetails(description="x")),
        (
            other.create_model,
            dsm.CreateModelDetails(compartment_id=compartment, project_id=project.id),
        ),
        (other.delete_project, project.id),
    ]
    for fn, *args in calls:
        err = _error(fn, *args)
        assert (err.status, err.code) == (404, "NotAuthorizedOrNotFound"), fn.__name__
    assert other.list_models(compartment_id=compartment).data == []
    assert other.list_projects(compartment_id=compartment).data == []
    assert ds.get_model(model.id).data.lifecycle_state == "ACTIVE"


# --- provenance ------------------------------------------------------------------------------


def test_model_provenance_create_get_update(ds, strict, project, compartment):
    model = ds.create_model(
        dsm.CreateModelDetails(compartment_id=compartment, project_id=project.id)
    ).data
    err = _error(strict.get_model_provenance, model.id)
    assert err.status == 404
    created = ds.create_model_provenance(
        model.id,
        dsm.CreateModelProvenanceDetails(
            repository_url="https://git.example/repo.git",
            git_branch="main",
            git_commit="abc123",
            script_dir="src",
            training_script="train.py",
            training_id="ocid1.datasciencejob.oc1..x",
        ),
    ).data
    assert created.git_commit == "abc123"
    updated = ds.update_model_provenance(
        model.id, dsm.UpdateModelProvenanceDetails(git_commit="def456")
    ).data
    assert (updated.git_commit, updated.git_branch) == ("def456", "main")
    got = ds.get_model_provenance(model.id).data
    assert got.training_script == "train.py" and got.git_commit == "def456"
    err = _error(strict.create_model_provenance, model.id, {"gitBranch": 3})
    assert (err.status, err.code) == (400, "InvalidParameter") and "gitBranch" in err.message


# --- work requests ---------------------------------------------------------------------------


def test_work_requests_get_list_errors_and_logs(ds, compartment):
    composite = DataScienceClientCompositeOperations(ds)
    projects = [
        ds.create_project(dsm.CreateProjectDetails(compartment_id=compartment)).data
        for _ in range(2)
    ]
    results = [
        composite.delete_project_and_wait_for_state(p.id, wait_for_states=DONE).data
        for p in projects
    ]
    wr = ds.get_work_request(results[0].id).data
    assert wr.status == "SUCCEEDED" and wr.percent_complete == 100.0
    assert wr.time_accepted <= wr.time_started <= wr.time_finished
    assert [(r.identifier, r.action_type, r.entity_type) for r in wr.resources] == [
        (projects[0].id, "DELETED", "project")
    ]
    listed = ds.list_work_requests(compartment_id=compartment).data
    assert {w.id for w in listed} == {r.id for r in results}
    by_resource = ds.list_work_requests(compartment_id=compartment, resource_id=projects[1].id)
    assert [w.id for w in by_resource.data] == [results[1].id]
    assert ds.list_work_requests(compartment_id=compartment, status="FAILED").data == []
    by_type = ds.list_work_requests(
        compartment_id=compartment, operation_type="PROJECT_DELETE", status="SUCCEEDED"
    ).data
    assert len(by_type) == 2
    logs = ds.list_work_request_logs(wr.id).data
    assert logs and all(entry.message and entry.timestamp for entry in logs)
    assert ds.list_work_request_errors(wr.id).data == []
    page = ds.list_work_request_logs(wr.id, limit=1)
    assert len(page.data) == 1 and page.has_next_page


def test_missing_resources_are_404(strict):
    for fn in (
        strict.get_model,
        strict.get_project,
        strict.get_work_request,
        strict.get_model_version_set,
    ):
        err = _error(fn, "ocid1.thing.oc1..absent")
        assert (err.status, err.code) == (404, "NotAuthorizedOrNotFound")


# --- durability ------------------------------------------------------------------------------


def test_restart_keeps_every_resource(tmp_path):
    with LocalOCI(data_dir=tmp_path / "svc") as svc:
        ds = svc.client(DataScienceClient)
        comp = svc.config["tenancy"]
        project = ds.create_project(dsm.CreateProjectDetails(compartment_id=comp)).data
        mvs = ds.create_model_version_set(
            dsm.CreateModelVersionSetDetails(
                compartment_id=comp, project_id=project.id, name="durable"
            )
        ).data
        model = ds.create_model(
            dsm.CreateModelDetails(
                compartment_id=comp,
                project_id=project.id,
                model_version_set_id=mvs.id,
                version_label="v1",
            )
        ).data
        ds.create_model_artifact(
            model.id, b"artifact bytes", content_disposition="attachment; filename=m.zip"
        )
        ds.create_model_provenance(model.id, dsm.CreateModelProvenanceDetails(git_commit="c1"))
        token = uuid.uuid4().hex
        ds.create_project(
            dsm.CreateProjectDetails(compartment_id=comp, display_name="tok"), opc_retry_token=token
        )
        other = ds.create_project(dsm.CreateProjectDetails(compartment_id=comp)).data
        done = (
            DataScienceClientCompositeOperations(ds)
            .delete_project_and_wait_for_state(other.id, wait_for_states=DONE)
            .data
        )
    with LocalOCI(data_dir=tmp_path / "svc") as svc:
        ds = svc.client(DataScienceClient)
        again = ds.get_model(model.id).data
        assert (again.version_label, again.model_version_set_name) == ("v1", "durable")
        assert ds.get_model_artifact_content(model.id).data.content == b"artifact bytes"
        assert ds.get_model_provenance(model.id).data.git_commit == "c1"
        assert ds.get_model_version_set(mvs.id).data.name == "durable"
        assert ds.get_work_request(done.id).data.status == "SUCCEEDED"
        replay = ds.create_project(
            dsm.CreateProjectDetails(compartment_id=comp, display_name="tok"),
            opc_retry_token=token,
        ).data
        names = [p.display_name for p in ds.list_projects(compartment_id=comp).data]
        assert names.count("tok") == 1 and replay.display_name == "tok"


def test_unfinished_work_requests_resume_after_a_restart(tmp_path):
    data_dir = tmp_path / "svc"
    with LocalOCI(data_dir=data_dir) as svc:
        ds = svc.client(DataScienceClient)
        comp = svc.config["tenancy"]
        project = ds.create_project(dsm.CreateProjectDetails(compartment_id=comp)).data
        datascience.work_gate(svc.state).clear()
        wr_id = ds.delete_project(project.id).headers["opc-work-request-id"]
        assert ds.get_work_request(wr_id).data.status == "ACCEPTED"
        # the service dies before the job runs: its thread gives up at the closed gate
        svc.state.extras["datascience_jobs_stopping"] = True
    with LocalOCI(data_dir=data_dir) as svc:
        ds = svc.client(DataScienceClient)
        assert ds.get_project(project.id).data.lifecycle_state in ("DELETING", "DELETED")
        wr = oci.wait_until(
            ds, ds.get_work_request(wr_id), "status", "SUCCEEDED", max_wait_seconds=60
        ).data
        assert wr.percent_complete == 100.0
        assert ds.get_project(project.id).data.lifecycle_state == "DELETED"
