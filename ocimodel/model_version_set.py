"""``ModelVersionSet``: the reference's builder over the model version sets of the catalog.

    mvs = (ModelVersionSet(auth=auth)
           .with_compartment_id(compartment_id)
           .with_project_id(project_id)
           .with_name("churn-experiment")
           .with_description("Experiment number one"))
    mvs.create()                          # found when it exists: never a duplicate
    mvs.model_add(model_id, version_label="v1")
    mvs.model_list()
    mvs.details_link                      # the console page of the set
    mvs.delete(delete_model=True)

The spec is kept under the reference's ``attribute_map`` keys (``compartmentId``...), and
:meth:`ModelVersionSet.to_dict` / :meth:`ModelVersionSet.from_dict` read and write it as
``{"kind": "modelVersionSet", "type": "dataScienceModelVersionSet", "spec": {...}}``.
Every remote call goes through :mod:`ocimodel.oci.version_sets` with the instance's ``auth``.

:func:`resolve_version_set_id` turns what ``save(model_version_set=...)`` accepts (an OCID, a
name, an instance) into the set's OCID.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

import oci.data_science.models as dsm

from ocimodel.errors import OcimodelError
from ocimodel.oci import version_sets as vs
from ocimodel.oci.auth import AuthLike, resolve_auth
from ocimodel.oci.version_sets import (
    ENV_COMPARTMENT_ID,
    ENV_PROJECT_ID,
    ModelVersionSetNotFoundError,
    ModelVersionSetSpecError,
    env_compartment_id,
    env_project_id,
    resolve_version_set_id,
)

__all__ = [
    "ENV_COMPARTMENT_ID",
    "ENV_PROJECT_ID",
    "ModelVersionSet",
    "ModelVersionSetNotFoundError",
    "ModelVersionSetSpecError",
    "resolve_version_set_id",
]

CONSOLE_URL = "https://cloud.oracle.com/data-science/model-version-sets/{id}?region={region}"


class ModelVersionSet:
    """A model version set of the catalog, built with ``with_*`` methods (see the module)."""

    CONST_ID = "id"
    CONST_PROJECT_ID = "projectId"
    CONST_COMPARTMENT_ID = "compartmentId"
    CONST_NAME = "name"
    CONST_DESCRIPTION = "description"
    CONST_FREEFORM_TAG = "freeformTags"
    CONST_DEFINED_TAG = "definedTags"

    attribute_map = {
        CONST_COMPARTMENT_ID: "compartment_id",
        CONST_DEFINED_TAG: "defined_tags",
        CONST_DESCRIPTION: "description",
        CONST_FREEFORM_TAG: "freeform_tags",
        CONST_ID: "id",
        CONST_NAME: "name",
        CONST_PROJECT_ID: "project_id",
    }
    _SPEC_KEYS = {**{v: k for k, v in attribute_map.items()}, **{k: k for k in attribute_map}}

    KIND = "modelVersionSet"
    TYPE = "dataScienceModelVersionSet"

    def __init__(self, spec: Mapping[str, Any] | None = None, *, auth: AuthLike = None, **kwargs):
        """``spec`` and ``kwargs`` hold spec values under the ``attribute_map`` keys
        (``compartmentId``) or their attribute names (``compartment_id``); ``kwargs`` win.
        ``auth`` says how to reach OCI (None: the default auth)."""
        if spec is not None and not isinstance(spec, Mapping):
            raise ModelVersionSetSpecError(
                f"spec must be a dict of {', '.join(self.attribute_map)}, "
                f"not {type(spec).__name__}."
            )
        self.auth = auth
        self._spec: dict[str, Any] = {}
        self._data: dsm.ModelVersionSet | dsm.ModelVersionSetSummary | None = None
        for source in (spec or {}, kwargs):
            for key, value in source.items():
                self._set(key, value)

    # --- spec ---------------------------------------------------------------------------------

    @classmethod
    def _spec_key(cls, key: str) -> str:
        try:
            return cls._SPEC_KEYS[key]
        except (KeyError, TypeError):
            raise ModelVersionSetSpecError(
                f"A model version set has no {key!r}; use {', '.join(cls.attribute_map)} "
                f"(or {', '.join(cls.attribute_map.values())})."
            ) from None

    def _set(self, key: str, value: Any) -> ModelVersionSet:
        name = self._spec_key(key)
        if value is None:
            self._spec.pop(name, None)
        else:
            self._spec[name] = copy.deepcopy(value)
        return self

    def _get(self, key: str) -> Any:
        return self._spec.get(key)

    @property
    def kind(self) -> str:
        return self.KIND

    @property
    def type(self) -> str:
        return self.TYPE

    @property
    def id(self) -> str | None:
        """The version set's OCID (None until created or loaded)."""
        return self._get(self.CONST_ID)

    @property
    def compartment_id(self) -> str | None:
        return self._get(self.CONST_COMPARTMENT_ID)

    @compartment_id.setter
    def compartment_id(self, value: str | None) -> None:
        self._set(self.CONST_COMPARTMENT_ID, value)

    @property
    def project_id(self) -> str | None:
        return self._get(self.CONST_PROJECT_ID)

    @project_id.setter
    def project_id(self, value: str | None) -> None:
        self._set(self.CONST_PROJECT_ID, value)

    @property
    def name(self) -> str | None:
        return self._get(self.CONST_NAME)

    @name.setter
    def name(self, value: str | None) -> None:
        self._set(self.CONST_NAME, value)

    @property
    def description(self) -> str | None:
        return self._get(self.CONST_DESCRIPTION)

    @description.setter
    def description(self, value: str | None) -> None:
        self._set(self.CONST_DESCRIPTION, value)

    @property
    def freeform_tags(self) -> dict[str, str] | None:
        return self._get(self.CONST_FREEFORM_TAG)

    @freeform_tags.setter
    def freeform_tags(self, value: dict[str, str] | None) -> None:
        self._set(self.CONST_FREEFORM_TAG, value)

    @property
    def defined_tags(self) -> dict[str, dict[str, Any]] | None:
        return self._get(self.CONST_DEFINED_TAG)

    @defined_tags.setter
    def defined_tags(self, value: dict[str, dict[str, Any]] | None) -> None:
        self._set(self.CONST_DEFINED_TAG, value)

    @property
    def lifecycle_state(self) -> str | None:
        """The state the service last reported (None until created or loaded)."""
        return getattr(self._data, "lifecycle_state", None)

    @property
    def details_link(self) -> str | None:
        """The console page of the set (None until it has an OCID)."""
        if not self.id:
            return None
        try:
            region = resolve_auth(self.auth).region
        except OcimodelError:
            region = None
        region = region or os.environ.get("OCI_REGION") or ""
        return CONSOLE_URL.format(id=self.id, region=region)

    def with_compartment_id(self, compartment_id: str) -> ModelVersionSet:
        return self._set(self.CONST_COMPARTMENT_ID, compartment_id)

    def with_project_id(self, project_id: str) -> ModelVersionSet:
        return self._set(self.CONST_PROJECT_ID, project_id)

    def with_name(self, name: str) -> ModelVersionSet:
        return self._set(self.CONST_NAME, name)

    def with_description(self, description: str) -> ModelVersionSet:
        return self._set(self.CONST_DESCRIPTION, description)

    def with_freeform_tags(
        self, tags: Mapping[str, str] | None = None, /, **kwargs: str
    ) -> ModelVersionSet:
        """Freeform tags, as keyword arguments (as the reference) and/or one dict."""
        return self._set(self.CONST_FREEFORM_TAG, {**(tags or {}), **kwargs})

    def with_defined_tags(
        self, tags: Mapping[str, Mapping[str, Any]] | None = None, /, **kwargs: Any
    ) -> ModelVersionSet:
        """Defined tags by namespace: ``with_defined_tags(Operations={"CostCenter": "42"})``
        (keyword arguments, as the reference, and/or one dict)."""
        return self._set(self.CONST_DEFINED_TAG, {**(tags or {}), **kwargs})

    # --- serialisation ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """``{"kind", "type", "spec"}``, the spec under the ``attribute_map`` keys."""
        return {"kind": self.kind, "type": self.type, "spec": copy.deepcopy(self._spec)}

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], *, auth: AuthLike = None) -> ModelVersionSet:
        """A ModelVersionSet from :meth:`to_dict`'s output (or from a bare spec dict)."""
        if not isinstance(config, Mapping):
            raise ModelVersionSetSpecError(f"from_dict takes a dict, not {type(config).__name__}.")
        if "spec" in config:
            kind = config.get("kind")
            if kind not in (None, cls.KIND):
                raise ModelVersionSetSpecError(
                    f"from_dict got a {kind!r}; a model version set has kind {cls.KIND!r}."
                )
            spec = config["spec"] or {}
        else:
            spec = config
        return cls(spec, auth=auth)

    def __repr__(self) -> str:
        return f"ModelVersionSet({self._spec!r})"

    # --- the catalog --------------------------------------------------------------------------

    def _load(self, data: dsm.ModelVersionSet | dsm.ModelVersionSetSummary) -> ModelVersionSet:
        for attr in self.attribute_map.values():
            if hasattr(data, attr):  # a summary has no description: keep the spec's
                self._set(attr, getattr(data, attr))
        self._data = data
        return self

    def _apply(self, kwargs: Mapping[str, Any]) -> None:
        for key, value in kwargs.items():
            self._set(key, value)

    def _require_id(self, action: str) -> str:
        if not self.id:
            raise ModelVersionSetSpecError(
                f"Cannot {action} a model version set that has no OCID yet: call create() "
                "first, or load one with from_id() or from_name()."
            )
        return self.id

    def _fill_from_env(self) -> None:
        if not self.compartment_id:
            self.compartment_id = env_compartment_id()
        if not self.project_id:
            self.project_id = env_project_id()

    def create(self, **kwargs: Any) -> ModelVersionSet:
        """Create the set in the catalog, or adopt the one of the same name in the compartment
        and project (its description and tags brought to this spec's); return ``self``.

        ``kwargs`` are spec values to set first. A compartment or project left unset comes from
        the environment (``PROJECT_COMPARTMENT_OCID``, ``NB_SESSION_COMPARTMENT_OCID``,
        ``JOB_RUN_COMPARTMENT_OCID``...; ``PROJECT_OCID``). A set that already has an OCID is
        updated to this spec instead."""
        self._apply(kwargs)
        if self.id:
            return self.update()
        self._fill_from_env()
        missing = [
            f"{name} ({hint})"
            for name, hint, value in (
                ("compartment_id", "with_compartment_id() or $PROJECT_COMPARTMENT_OCID",
                 self.compartment_id),
                ("project_id", "with_project_id() or $PROJECT_OCID", self.project_id),
                ("name", "with_name()", self.name),
            )
            if not value
        ]  # fmt: skip
        if missing:
            raise ModelVersionSetSpecError(
                f"A model version set needs {', '.join(missing)} before create()."
            )
        data = vs.create_version_set(
            self.auth,
            compartment_id=self.compartment_id,
            project_id=self.project_id,
            name=self.name,
            description=self.description,
            freeform_tags=self.freeform_tags,
            defined_tags=self.defined_tags,
        )
        return self._load(data)

    def update(self, **kwargs: Any) -> ModelVersionSet:
        """Send this spec's description and tags to the catalog (after setting ``kwargs``);
        return ``self``. A set's name cannot change."""
        self._apply(kwargs)
        mvs_id = self._require_id("update")
        current = vs.get_version_set(self.auth, mvs_id)
        if self.name and current.name != self.name:
            raise ModelVersionSetSpecError(
                f"Model version set {mvs_id} is named {current.name!r}; a name cannot change "
                f"(asked: {self.name!r}). Create a new set with that name instead."
            )
        data = vs.update_version_set(
            self.auth,
            mvs_id,
            description=self.description,
            freeform_tags=self.freeform_tags,
            defined_tags=self.defined_tags,
        )
        return self._load(data)

    def delete(self, delete_model: bool | None = False, **kwargs: Any) -> ModelVersionSet:
        """Delete the set (and, with ``delete_model``, its models); wait until DELETED; return
        ``self``. ``kwargs``: ``max_wait_time``, ``poll_interval``, ``progress``."""
        mvs_id = self._require_id("delete")
        vs.delete_version_set(self.auth, mvs_id, delete_models=bool(delete_model), **kwargs)
        return self._load(vs.get_version_set(self.auth, mvs_id))

    def model_add(
        self, model_id: str, version_label: str | None = None, **kwargs: Any
    ) -> dsm.Model:
        """Put a model into this set, with an optional version label; return the model."""
        if kwargs:
            raise ModelVersionSetSpecError(
                f"model_add takes model_id and version_label; got {', '.join(sorted(kwargs))}."
            )
        return vs.add_model(self.auth, self._require_id("add a model to"), model_id, version_label)

    def model_list(self) -> list[dsm.ModelSummary]:
        """The models of this set (not DELETED), by version."""
        return vs.list_version_set_models(self.auth, self._require_id("list the models of"))

    def models(self) -> list[dsm.ModelSummary]:
        """Same as :meth:`model_list`."""
        return self.model_list()

    @classmethod
    def from_id(cls, id: str, *, auth: AuthLike = None) -> ModelVersionSet:  # noqa: A002
        """The version set of this OCID (:class:`ModelVersionSetNotFoundError` if none)."""
        return cls(auth=auth)._load(vs.get_version_set(auth, id))

    @classmethod
    def from_ocid(cls, ocid: str, *, auth: AuthLike = None) -> ModelVersionSet:
        """Same as :meth:`from_id`."""
        return cls.from_id(ocid, auth=auth)

    @classmethod
    def from_name(
        cls,
        name: str,
        compartment_id: str | None = None,
        project_id: str | None = None,
        *,
        auth: AuthLike = None,
    ) -> ModelVersionSet:
        """The ACTIVE version set of this name in the compartment (and project, if given).

        The compartment defaults to the environment's (``PROJECT_COMPARTMENT_OCID``,
        ``NB_SESSION_COMPARTMENT_OCID``, ``JOB_RUN_COMPARTMENT_OCID``...). A name that is not
        there raises :class:`ModelVersionSetNotFoundError` naming it and the compartment."""
        return cls(auth=auth)._load(
            vs.get_version_set_by_name(auth, name, compartment_id, project_id)
        )

    @classmethod
    def list(
        cls,
        compartment_id: str | None = None,
        project_id: str | None = None,
        *,
        auth: AuthLike = None,
    ) -> list[ModelVersionSet]:
        """The ACTIVE version sets of the compartment (default: the environment's)."""
        compartment = compartment_id or env_compartment_id()
        if not compartment:
            raise ModelVersionSetSpecError(
                "list() needs a compartment: pass compartment_id, or set one of "
                f"{', '.join('$' + n for n in ENV_COMPARTMENT_ID)}."
            )
        found = vs.list_version_sets(auth, compartment, project_id=project_id)
        return [cls(auth=auth)._load(s) for s in found]
