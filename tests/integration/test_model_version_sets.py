"""ModelVersionSet (the reference's builder) and ocimodel.oci.version_sets through the real oci
SDK against the local service: create (idempotent by name), update, delete with and without
models, from_id/from_name/from_dict/to_dict, model_add/model_list, details_link, and
resolve_version_set_id as save will use it."""

from __future__ import annotations

import pickle
import uuid

import oci
import oci.data_science.models as dsm
import pytest

from ocimodel.local.server import fast_retry_strategy
from ocimodel.model_version_set import (
    ModelVersionSet,
    ModelVersionSetSpecError,
    resolve_version_set_id,
)
from ocimodel.oci import catalog, version_sets
from ocimodel.oci.auth import OCIAuth
from ocimodel.oci.catalog import CatalogInputError, ModelCatalogError
from ocimodel.oci.version_sets import (
    AmbiguousModelVersionSetError,
    ModelVersionSetNotEmptyError,
    ModelVersionSetNotFoundError,
)

COMPARTMENT_ENV = (
    "PROJECT_COMPARTMENT_OCID",
    "NB_SESSION_COMPARTMENT_OCID",
    "JOB_RUN_COMPARTMENT_OCID",
    "PIPELINE_RUN_COMPARTMENT_OCID",
    "PROJECT_OCID",
)


@pytest.fixture(scope="module")
def auth(local_oci) -> OCIAuth:
    """An OCIAuth of the local user, with fast SDK retries and no circuit breaker."""
    return OCIAuth.from_config_file(
        str(local_oci.config_path),
        endpoint=local_oci.endpoint,
        client_kwargs={
            "retry_strategy": fast_retry_strategy(),
            "circuit_breaker_strategy": oci.circuit_breaker.NoCircuitBreakerStrategy(),
        },
    )


@pytest.fixture(autouse=True)
def no_notebook_env(monkeypatch):
    """No compartment or project from the environment unless a test sets one."""
    for name in COMPARTMENT_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def builder(auth, compartment, project):
    """A ModelVersionSet builder for the test's compartment and project."""

    def make(name: str = "experiment") -> ModelVersionSet:
        return (
            ModelVersionSet(auth=auth)
            .with_compartment_id(compartment)
            .with_project_id(project.id)
            .with_name(name)
        )

    return make


def _model(auth, compartment, project) -> str:
    details = {"compartment_id": compartment, "project_id": project.id}
    return catalog.create_model(auth, details, retry_token=uuid.uuid4().hex).id


def test_builder_create_to_dict_from_dict_and_details_link(auth, ds, builder, compartment, project):
    mvs = (
        builder("churn")
        .with_description("Experiment number one")
        .with_freeform_tags(team="ml", stage="dev")
        .with_defined_tags(Operations={"CostCenter": "42"})
    )
    assert mvs.id is None and mvs.details_link is None and mvs.lifecycle_state is None
    assert mvs.create() is mvs
    assert mvs.id.startswith("ocid1.datasciencemodelversionset")
    assert mvs.lifecycle_state == "ACTIVE"
    remote = ds.get_model_version_set(mvs.id).data
    assert (remote.name, remote.description) == ("churn", "Experiment number one")
    assert remote.freeform_tags == {"team": "ml", "stage": "dev"}
    assert remote.defined_tags == {"Operations": {"CostCenter": "42"}}
    assert mvs.details_link == (
        f"https://cloud.oracle.com/data-science/model-version-sets/{mvs.id}?region=us-ashburn-1"
    )

    config = mvs.to_dict()
    assert config == {
        "kind": "modelVersionSet",
        "type": "dataScienceModelVersionSet",
        "spec": {
            "compartmentId": compartment,
            "projectId": project.id,
            "name": "churn",
            "description": "Experiment number one",
            "freeformTags": {"team": "ml", "stage": "dev"},
            "definedTags": {"Operations": {"CostCenter": "42"}},
            "id": mvs.id,
        },
    }
    assert set(config["spec"]) <= set(ModelVersionSet.attribute_map)
    again = ModelVersionSet.from_dict(config, auth=auth)
    assert again.to_dict() == config and again.id == mvs.id
    bare = ModelVersionSet.from_dict(config["spec"])
    assert bare.name == "churn" and bare.compartment_id == compartment
    snake = ModelVersionSet({"compartment_id": compartment}, name="n", projectId=project.id)
    assert (snake.compartment_id, snake.project_id, snake.name) == (compartment, project.id, "n")
    assert ModelVersionSet.CONST_FREEFORM_TAG == "freeformTags"
    assert ModelVersionSet.attribute_map["definedTags"] == "defined_tags"


def test_create_is_idempotent_by_name(auth, ds, builder, compartment, project):
    first = builder("same-name").with_description("one").create()
    second = builder("same-name").with_description("two").with_freeform_tags(k="v").create()
    assert second.id == first.id
    remote = ds.get_model_version_set(first.id).data
    assert (remote.description, remote.freeform_tags) == ("two", {"k": "v"})  # converged
    third = builder("same-name").create()  # nothing asked: nothing changed
    assert third.id == first.id and third.description == "two"
    names = ds.list_model_version_sets(compartment_id=compartment, name="same-name").data
    assert [s.id for s in names] == [first.id]
    assert first.create().id == first.id  # has an OCID: an update, not a second set


def test_create_that_loses_a_race_finds_the_winner(auth, ds, compartment, project, monkeypatch):
    winner = ds.create_model_version_set(
        dsm.CreateModelVersionSetDetails(
            compartment_id=compartment, project_id=project.id, name="raced"
        )
    ).data
    real_find = version_sets.find_version_set
    calls = []

    def find_late(*args, **kwargs):  # the first lookup runs before the other create lands
        calls.append(args)
        return None if len(calls) == 1 else real_find(*args, **kwargs)

    monkeypatch.setattr(version_sets, "find_version_set", find_late)
    got = version_sets.create_version_set(
        auth, compartment_id=compartment, project_id=project.id, name="raced"
    )
    assert got.id == winner.id and len(calls) == 2


def test_update_changes_description_and_tags_but_not_the_name(auth, ds, builder):
    mvs = builder("to-update").create()
    mvs.update(description="better", freeform_tags={"a": "b"})
    remote = ds.get_model_version_set(mvs.id).data
    assert (remote.description, remote.freeform_tags) == ("better", {"a": "b"})
    mvs.with_name("renamed")
    with pytest.raises(ModelVersionSetSpecError, match="a name cannot change"):
        mvs.update()
    with pytest.raises(ModelVersionSetSpecError, match="call create\\(\\) first"):
        builder("never-created").update()


def test_from_id_from_ocid_and_from_name(auth, builder, compartment, project, monkeypatch):
    made = builder("lookup").with_description("found me").create()
    for loaded in (
        ModelVersionSet.from_id(made.id, auth=auth),
        ModelVersionSet.from_ocid(made.id, auth=auth),
        ModelVersionSet.from_name("lookup", compartment, auth=auth),
        ModelVersionSet.from_name("lookup", compartment, project.id, auth=auth),
    ):
        assert loaded.to_dict() == made.to_dict()
        assert loaded.description == "found me"
    monkeypatch.setenv("NB_SESSION_COMPARTMENT_OCID", compartment)
    assert ModelVersionSet.from_name("lookup", auth=auth).id == made.id
    assert [s.id for s in ModelVersionSet.list(auth=auth)] == [made.id]


def test_unknown_names_and_ids_are_typed_errors(auth, compartment, project):
    with pytest.raises(ModelVersionSetNotFoundError) as info:
        ModelVersionSet.from_name("no-such-set", compartment, auth=auth)
    err = info.value
    assert (err.name, err.compartment_id) == ("no-such-set", compartment)
    assert "'no-such-set'" in str(err) and compartment in str(err)
    assert pickle.loads(pickle.dumps(err)).name == "no-such-set"
    with pytest.raises(ModelVersionSetSpecError, match="PROJECT_COMPARTMENT_OCID"):
        ModelVersionSet.from_name("no-such-set", auth=auth)
    missing = "ocid1.datasciencemodelversionset.oc1..missing"
    with pytest.raises(ModelVersionSetNotFoundError) as info:
        ModelVersionSet.from_id(missing, auth=auth)
    assert info.value.version_set_id == missing and info.value.status == 404
    with pytest.raises(CatalogInputError):
        version_sets.find_version_set(auth, "", compartment)


def test_a_name_in_two_projects_needs_the_project(auth, ds, compartment, project):
    other = ds.create_project(dsm.CreateProjectDetails(compartment_id=compartment)).data
    for proj in (project.id, other.id):
        version_sets.create_version_set(
            auth, compartment_id=compartment, project_id=proj, name="twice"
        )
    with pytest.raises(AmbiguousModelVersionSetError, match="Pass project_id") as info:
        ModelVersionSet.from_name("twice", compartment, auth=auth)
    assert len(info.value.version_set_ids) == 2
    assert ModelVersionSet.from_name("twice", compartment, other.id, auth=auth).project_id == (
        other.id
    )


def test_spec_errors(auth):
    with pytest.raises(ModelVersionSetSpecError, match="has no 'colour'"):
        ModelVersionSet(colour="red")
    with pytest.raises(ModelVersionSetSpecError, match="kind 'modelVersionSet'"):
        ModelVersionSet.from_dict({"kind": "job", "spec": {}})
    with pytest.raises(ModelVersionSetSpecError, match="name"):
        ModelVersionSet(auth=auth, compartment_id="c", project_id="p").create()
    with pytest.raises(ModelVersionSetSpecError, match="compartment_id"):
        ModelVersionSet(auth=auth, name="n").create()


def test_model_add_and_model_list(auth, ds, builder, compartment, project):
    mvs = builder("versions").create()
    first, second = _model(auth, compartment, project), _model(auth, compartment, project)
    outsider = _model(auth, compartment, project)
    assert mvs.model_list() == []
    added = mvs.model_add(first, version_label="v1")
    assert (added.model_version_set_id, added.version_label) == (mvs.id, "v1")
    mvs.model_add(second)
    listed = mvs.model_list()
    assert [m.id for m in listed] == [first, second] and outsider not in {m.id for m in listed}
    assert [m.version_label for m in listed] == ["v1", None]
    assert [m.version_id for m in listed] == [1, 2]
    with pytest.raises(ModelVersionSetSpecError, match="model_add takes"):
        mvs.model_add(first, label="v1")


def test_delete_with_and_without_its_models(auth, ds, builder, compartment, project):
    mvs = builder("to-delete").create()
    model_id = _model(auth, compartment, project)
    mvs.model_add(model_id)
    with pytest.raises(ModelVersionSetNotEmptyError) as info:
        mvs.delete()
    assert info.value.model_ids == [model_id] and "delete_model=True" in str(info.value)
    assert ds.get_model_version_set(mvs.id).data.lifecycle_state == "ACTIVE"

    assert mvs.delete(delete_model=True, poll_interval=0.1) is mvs
    assert mvs.lifecycle_state == "DELETED"
    assert ds.get_model_version_set(mvs.id).data.lifecycle_state == "DELETED"
    assert ds.get_model(model_id).data.lifecycle_state == "DELETED"
    mvs.delete()  # already deleted: converges

    empty = builder("empty").create()
    empty.delete()
    assert empty.lifecycle_state == "DELETED"
    # the name is free again: a new set is created, not the deleted one found
    assert builder("empty").create().id != empty.id


def test_resolve_version_set_id(auth, ds, builder, compartment, project):
    kw = {"auth": auth, "compartment_id": compartment, "project_id": project.id}
    assert resolve_version_set_id(None, **kw) is None
    saved = builder("resolved").create()
    assert resolve_version_set_id(saved.id, **kw) == saved.id
    assert resolve_version_set_id("resolved", **kw) == saved.id
    assert resolve_version_set_id(saved, **kw) == saved.id

    unsaved = ModelVersionSet(name="made-by-save")  # no auth, compartment or project yet
    new_id = resolve_version_set_id(unsaved, **kw)
    assert new_id == unsaved.id and unsaved.compartment_id == compartment
    assert ds.get_model_version_set(new_id).data.project_id == project.id
    assert resolve_version_set_id(ModelVersionSet(name="made-by-save"), **kw) == new_id

    with pytest.raises(ModelVersionSetNotFoundError, match="'absent'"):
        resolve_version_set_id("absent", **kw)
    with pytest.raises(ModelVersionSetSpecError, match="not a model version set OCID"):
        resolve_version_set_id("ocid1.datasciencemodel.oc1..xyz", **kw)
    with pytest.raises(ModelVersionSetSpecError, match="not int"):
        resolve_version_set_id(42, **kw)
    gone = builder("gone").create()
    gone.delete()
    with pytest.raises(ModelVersionSetNotFoundError, match="is DELETED"):
        resolve_version_set_id(gone.id, **kw)


def test_resolve_finds_names_in_the_environments_compartment(
    auth, builder, compartment, monkeypatch
):
    saved = builder("from-env").create()
    monkeypatch.setenv("JOB_RUN_COMPARTMENT_OCID", compartment)
    got = version_sets.resolve_version_set_id(
        "from-env", auth=auth, compartment_id=None, project_id=None
    )
    assert got == saved.id
    assert version_sets.resolve_version_set_id is resolve_version_set_id  # one implementation
    monkeypatch.delenv("JOB_RUN_COMPARTMENT_OCID")
    with pytest.raises(ModelVersionSetSpecError, match="needs the compartment"):
        resolve_version_set_id("from-env", auth=auth, compartment_id=None, project_id=None)


def test_service_errors_name_the_operation(auth, local_faults, builder):
    mvs = builder("faulty").create()
    local_faults.add_faults(
        {"operation": "update_model_version_set", "status": 409, "code": "IncorrectState"}
    )
    with pytest.raises(ModelCatalogError) as info:
        mvs.update(description="x")
    err = info.value
    assert (err.status, err.code, err.operation) == (
        409,
        "IncorrectState",
        "update_model_version_set",
    )
    assert "busy" in str(err)
