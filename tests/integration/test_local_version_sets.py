"""Model version sets of ocimodel.local, and models joining them, driven by the real SDK."""

from __future__ import annotations

import oci
import oci.data_science.models as dsm
import pytest
from oci.data_science import DataScienceClient, DataScienceClientCompositeOperations
from sdk_calls import DONE
from sdk_calls import service_error as _error


@pytest.fixture(scope="module")
def ds(strict) -> DataScienceClient:
    """The no-retry client: conflicts must surface at once."""
    return strict


def _set(ds, compartment, project, name, **kw) -> dsm.ModelVersionSet:
    return ds.create_model_version_set(
        dsm.CreateModelVersionSetDetails(
            compartment_id=compartment, project_id=project.id, name=name, **kw
        )
    ).data


def _model(ds, compartment, project, **kw) -> dsm.Model:
    return ds.create_model(
        dsm.CreateModelDetails(compartment_id=compartment, project_id=project.id, **kw)
    ).data


def test_create_get_list_update(local_oci, ds, compartment, project):
    mvs = _set(ds, compartment, project, "fraud", description="d", freeform_tags={"a": "b"})
    assert mvs.lifecycle_state == dsm.ModelVersionSet.LIFECYCLE_STATE_ACTIVE
    assert mvs.category == dsm.ModelVersionSet.CATEGORY_USER
    assert mvs.created_by == local_oci.config["user"]
    other = _set(ds, compartment, project, "churn")

    got = ds.get_model_version_set(mvs.id)
    assert (got.data.name, got.data.description) == ("fraud", "d")
    by_name = ds.list_model_version_sets(compartment_id=compartment, name="fraud").data
    assert [s.id for s in by_name] == [mvs.id]
    everything = ds.list_model_version_sets(
        compartment_id=compartment, project_id=project.id, sort_by="name"
    ).data
    assert [s.name for s in everything] == ["churn", "fraud"]
    assert other.id in {s.id for s in everything}

    err = _error(
        ds.update_model_version_set,
        mvs.id,
        dsm.UpdateModelVersionSetDetails(description="x"),
        if_match="stale",
    )
    assert err.status == 412
    updated = ds.update_model_version_set(
        mvs.id,
        dsm.UpdateModelVersionSetDetails(description="new"),
        if_match=got.headers["etag"],
    ).data
    assert updated.description == "new" and updated.name == "fraud"
    err = _error(ds.update_model_version_set, mvs.id, {"name": "renamed"})
    assert (err.status, err.code) == (400, "InvalidParameter") and "name" in err.message


def test_name_is_unique_per_compartment_and_project(ds, compartment, project):
    _set(ds, compartment, project, "dup")
    err = _error(_set, ds, compartment, project, "dup")
    assert err.status == 409 and "dup" in err.message
    another = ds.create_project(dsm.CreateProjectDetails(compartment_id=compartment)).data
    assert _set(ds, compartment, another, "dup").name == "dup"
    err = _error(
        ds.create_model_version_set, {"compartmentId": compartment, "projectId": project.id}
    )
    assert (err.status, err.code) == (400, "MissingParameter") and err.message.startswith("name")


def test_models_join_a_set_and_count_versions(ds, compartment, project):
    mvs = _set(ds, compartment, project, "versions")
    first = _model(ds, compartment, project, model_version_set_id=mvs.id, version_label="v1")
    second = _model(ds, compartment, project, model_version_set_id=mvs.id, version_label="v2")
    assert (first.version_id, second.version_id) == (1, 2)
    assert first.model_version_set_name == second.model_version_set_name == "versions"

    loose = _model(ds, compartment, project)
    assert loose.version_id is None and loose.model_version_set_id is None
    joined = ds.update_model(
        loose.id, dsm.UpdateModelDetails(model_version_set_id=mvs.id, version_label="v3")
    ).data
    assert (joined.version_id, joined.version_label) == (3, "v3")
    assert joined.model_version_set_name == "versions"

    members = ds.list_models(compartment_id=compartment, model_version_set_name="versions").data
    assert {m.id for m in members} == {first.id, second.id, loose.id}
    assert all(m.model_version_set_name == "versions" for m in members)
    labelled = ds.list_models(compartment_id=compartment, version_label="v2").data
    assert [m.id for m in labelled] == [second.id]

    err = _error(
        _model,
        ds,
        compartment,
        project,
        model_version_set_id="ocid1.datasciencemodelversionset.oc1..none",
    )
    assert (err.status, err.code) == (404, "NotAuthorizedOrNotFound")


def test_delete_needs_is_delete_related_models_when_the_set_has_models(ds, compartment, project):
    mvs = _set(ds, compartment, project, "busy")
    models = [_model(ds, compartment, project, model_version_set_id=mvs.id) for _ in range(2)]
    err = _error(ds.delete_model_version_set, mvs.id)
    assert (err.status, err.code) == (409, "IncorrectState")
    assert "isDeleteRelatedModels" in err.message
    assert ds.get_model_version_set(mvs.id).data.lifecycle_state == "ACTIVE"

    composite = DataScienceClientCompositeOperations(ds)
    wr = composite.delete_model_version_set_and_wait_for_state(
        mvs.id, wait_for_states=DONE, operation_kwargs={"is_delete_related_models": True}
    ).data
    assert wr.status == "SUCCEEDED"
    assert wr.operation_type == dsm.WorkRequest.OPERATION_TYPE_MODELVERSIONSET_DELETE
    assert ds.get_model_version_set(mvs.id).data.lifecycle_state == "DELETED"
    for m in models:
        assert ds.get_model(m.id).data.lifecycle_state == "DELETED"
    assert ds.list_model_version_sets(compartment_id=compartment).data == []

    err = _error(ds.delete_model_version_set, mvs.id)
    assert (err.status, err.code) == (409, "IncorrectState")
    err = _error(_model, ds, compartment, project, model_version_set_id=mvs.id)
    assert (err.status, err.code) == (409, "IncorrectState")
    # the name is free again once the set is deleted
    assert _set(ds, compartment, project, "busy").id != mvs.id


def test_empty_set_deletes_and_other_tenancy_cannot_see_it(local_oci, ds, compartment, project):
    mvs = _set(ds, compartment, project, "private")
    other = local_oci.client(
        DataScienceClient,
        config=local_oci.add_user(),
        retry_strategy=oci.retry.NoneRetryStrategy(),
    )
    for call in (other.get_model_version_set, other.delete_model_version_set):
        err = _error(call, mvs.id)
        assert (err.status, err.code) == (404, "NotAuthorizedOrNotFound")
    assert other.list_model_version_sets(compartment_id=compartment).data == []
    err = _error(
        other.create_model,
        dsm.CreateModelDetails(
            compartment_id=compartment, project_id=project.id, model_version_set_id=mvs.id
        ),
    )
    assert err.status == 404

    composite = DataScienceClientCompositeOperations(ds)
    wr = composite.delete_model_version_set_and_wait_for_state(mvs.id, wait_for_states=DONE)
    assert wr.data.status == "SUCCEEDED"
    assert [r.action_type for r in wr.data.resources] == ["DELETED"]
    err = _error(other.get_work_request, wr.data.id)
    assert (err.status, err.code) == (404, "NotAuthorizedOrNotFound")
    assert other.list_work_requests(compartment_id=compartment).data == []
    assert ds.get_model_version_set(mvs.id).data.lifecycle_state == "DELETED"
