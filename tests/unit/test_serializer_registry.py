"""Serializer registries by name (fsspec-style, dotted paths imported on first use) and the
score.py code each serializer declares.

A third-party serializer defined here (not in ocimodel) is registered by its dotted path and
prepares an artifact whose score.py reads the model in a fresh process.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest

from ocimodel import serde
from ocimodel.errors import MissingExtraError, OcimodelError, SerializeModelNotImplementedError
from ocimodel.layout import MODEL_INPUT_SERDE_FILE_NAME, MODEL_SAVE_SERDE_FILE_NAME
from ocimodel.score import ScoreTemplateError, generate_score_py, render_score_py
from ocimodel.serde import (
    SERDE,
    CloudpickleModelSaveSerializer,
    InputSerializer,
    InputSerializerRefusedError,
    JsonInputSerializer,
    ModelSaveSerializer,
    SerializerAlreadyRegisteredError,
    SerializerImportError,
    SerializerRegistryError,
    get_model_input_serializer,
    get_model_save_serializer,
    input_loader_of,
    model_save_serializer_names,
    register_model_input_serializer,
    register_model_save_serializer,
    score_loader_of,
    unregister_model_input_serializer,
    unregister_model_save_serializer,
)

MY_PACK = "oci://my-packs@myns/conda_environments/cpu/mine/1.0/mine_v1"


# --- a third-party serializer pair, as a package outside ocimodel would write them ------------


class LinearJsonSerializer(ModelSaveSerializer):
    """Writes a linear model's coefficients as JSON; score.py rebuilds a predictor from them."""

    name = "linear-json"
    file_name = "model.json"
    extension = ".json"
    score_loader = """
        with open(path, encoding="utf-8") as fh:
            params = json.load(fh)

        class LinearModel:
            def predict(self, rows):
                return [
                    sum(c * x for c, x in zip(params["coef"], row)) + params["intercept"]
                    for row in rows
                ]

        return LinearModel()
    """

    def serialize(self, data):
        coef = [float(c) for c in np.ravel(data.coef_)]
        return json.dumps({"coef": coef, "intercept": float(data.intercept_)})

    def deserialize(self, data):
        return json.loads(data)


class CsvRowsInputSerializer(InputSerializer):
    """Sends rows of numbers as CSV text; score.py parses them back without any pickle."""

    name = "csv-rows"
    score_decoder = """
        text = bytes(data).decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        return [[float(v) for v in line.split(",")] for line in text.strip().splitlines()]
    """

    def serialize(self, data):
        return "\n".join(",".join(str(v) for v in row) for row in data)

    def deserialize(self, data):
        text = bytes(data).decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        return [[float(v) for v in line.split(",")] for line in text.strip().splitlines()]


@pytest.fixture
def names():
    """Names registered by a test, unregistered afterwards."""
    used: list[str] = []
    yield used
    for name in used:
        unregister_model_save_serializer(name)
        unregister_model_input_serializer(name)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def write_module(folder: Path, name: str, body: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(body), encoding="utf-8")


# --- the third-party serializer, end to end ---------------------------------------------------


def test_third_party_serializers_registered_by_path_prepare_and_verify(tmp_path, names):
    from sklearn.linear_model import LinearRegression

    from ocimodel.pipeline import prepare_artifact
    from ocimodel.verify import verify_artifact

    model_name, input_name = unique("linear_json"), unique("csv_rows")
    names += [model_name, input_name]
    register_model_save_serializer(model_name, f"{__name__}:LinearJsonSerializer")
    register_model_input_serializer(input_name, f"{__name__}.CsvRowsInputSerializer")

    X = np.arange(20.0).reshape(10, 2)
    model = LinearRegression().fit(X, X @ [2.0, -1.0] + 3.0)
    folder = tmp_path / "artifact"
    prepare_artifact(
        model,
        str(folder),
        inference_conda_env=MY_PACK,
        inference_python_version="3.11",
        model_save_serializer=model_name,
        model_input_serializer=input_name,
    )
    files = sorted(p.name for p in folder.iterdir())
    assert "model.json" in files and "score.py" in files
    assert MODEL_SAVE_SERDE_FILE_NAME not in files and MODEL_INPUT_SERDE_FILE_NAME not in files
    score_py = (folder / "score.py").read_text()
    assert "MODEL_SERIALIZER = 'linear-json'" in score_py
    assert "INPUT_SERIALIZER = 'csv-rows'" in score_py
    assert "params = json.load(fh)" in score_py

    rows = [[1.0, 2.0], [5.0, -3.0]]
    expected = pytest.approx(model.predict(np.array(rows)).tolist())
    body, content_type = get_model_input_serializer(input_name).to_request(rows)
    assert (body, content_type) == (b"1.0,2.0\n5.0,-3.0", "text/plain")
    result = verify_artifact(folder, rows, input_serializer=input_name)
    assert result["prediction"] == expected
    assert verify_artifact(folder, rows, input_serializer=input_name, in_process=True) == result

    # score.py needs neither ocimodel nor this test module to read the model
    out = run_isolated(folder, "out['p'] = score.predict(b'1.0,2.0\\n5.0,-3.0')")
    assert out["p"]["prediction"] == expected


def run_isolated(folder: Path, calls: str) -> dict:
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.modules["ocimodel"] = None
        sys.path.insert(0, {str(folder)!r})
        import score
        out = {{}}
        {calls}
        print(json.dumps(out))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, cwd=folder
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- lazy dotted paths ------------------------------------------------------------------------


def test_a_dotted_path_is_imported_on_first_get_only(tmp_path, monkeypatch, names):
    module = unique("thirdparty_serializers")
    write_module(
        tmp_path,
        module,
        """
        from ocimodel.serde import CloudpickleModelSaveSerializer


        class Renamed(CloudpickleModelSaveSerializer):
            file_name = "renamed.pkl"
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    colon, dotted = unique("colon"), unique("dotted")
    names += [colon, dotted]
    register_model_save_serializer(colon, f"{module}:Renamed")
    register_model_save_serializer(dotted, f"{module}.Renamed")
    assert module not in sys.modules
    assert {colon, dotted} <= set(model_save_serializer_names())
    assert module not in sys.modules  # listing the names imports nothing

    first = get_model_save_serializer(colon)
    assert module in sys.modules
    assert type(first).__name__ == "Renamed" and first.file_name == "renamed.pkl"
    imported = sys.modules.pop(module)
    second = get_model_save_serializer(colon)
    assert module not in sys.modules  # resolved once, not imported again
    assert type(second) is type(first)
    # a subclass that changes no reading method keeps its parent's declared loader
    assert score_loader_of(second) == "cloudpickle"
    sys.modules[module] = imported
    assert type(get_model_save_serializer(dotted)) is type(first)


def test_serde_never_imports_onnx_and_onnx_still_names_its_extra(tmp_path):
    sources = Path(serde.__file__).parent.glob("*.py")
    imported = {
        alias.name if isinstance(node, ast.Import) else node.module
        for source in sources
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8")))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert "ocimodel.serde.model" in imported  # the package's own modules were read
    assert not any(name and name.startswith("ocimodel.onnx") for name in imported)
    script = textwrap.dedent(
        """
        import sys
        for name in ("skl2onnx", "onnx", "onnxruntime"):
            sys.modules[name] = None
        import ocimodel.serde
        from ocimodel.errors import MissingExtraError
        print("oci" in sys.modules, "ocimodel.onnx" in sys.modules)
        ocimodel.serde.get_model_save_serializer("cloudpickle")
        print("ocimodel.onnx" in sys.modules)
        from ocimodel.score import render_score_py
        source = render_score_py(model_file_name="model.onnx", model_serializer="onnx")
        print("onnxruntime.InferenceSession" in source, "ocimodel.onnx" in sys.modules)
        try:
            ocimodel.serde.get_model_save_serializer("onnx")
        except MissingExtraError as exc:
            print(f"{type(exc).__name__}: {exc}")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:3] == ["False False", "False", "True True"]
    assert lines[3].startswith("MissingExtraError: as_onnx=True needs the optional extra 'onnx'")


# --- registration -----------------------------------------------------------------------------


class OtherSerializer(CloudpickleModelSaveSerializer):
    name = "other"


def test_a_taken_name_is_refused_unless_clobber(names):
    name = unique("dup")
    names.append(name)
    register_model_save_serializer(name, CloudpickleModelSaveSerializer)
    register_model_save_serializer(name.upper(), CloudpickleModelSaveSerializer)  # the same: ok
    with pytest.raises(SerializerAlreadyRegisteredError) as info:
        register_model_save_serializer(name, OtherSerializer)
    assert isinstance(info.value, SerializerRegistryError) and isinstance(info.value, OcimodelError)
    message = str(info.value)
    assert repr(name) in message and "clobber=True" in message and "OtherSerializer" in message
    assert type(get_model_save_serializer(name)) is CloudpickleModelSaveSerializer
    register_model_save_serializer(name, OtherSerializer, clobber=True)
    assert type(get_model_save_serializer(name)) is OtherSerializer

    with pytest.raises(SerializerAlreadyRegisteredError, match="'cloudpickle' is already"):
        register_model_save_serializer("cloudpickle", f"{__name__}:OtherSerializer")
    with pytest.raises(SerializerAlreadyRegisteredError, match="'onnx' is already"):
        register_model_save_serializer("onnx", OtherSerializer)
    with pytest.raises(SerializerAlreadyRegisteredError, match="'json' is already"):
        register_model_input_serializer("json", CsvRowsInputSerializer)
    register_model_input_serializer("json", JsonInputSerializer)  # the same: ok

    path = unique("paths")
    names.append(path)
    register_model_save_serializer(path, f"{__name__}.OtherSerializer")
    register_model_save_serializer(path, f"{__name__}:OtherSerializer")  # the same target
    with pytest.raises(InputSerializerRefusedError):
        register_model_input_serializer("Pickle", CsvRowsInputSerializer, clobber=True)


@pytest.mark.parametrize(
    "target", ["nodots", "not a path", "pkg..mod:Cls", "pkg.mod:", 3, None, "pkg.mod:Cls:X"]
)
def test_a_malformed_target_is_refused_at_registration(target, names):
    name = unique("bad")
    names.append(name)
    with pytest.raises(SerializerRegistryError) as info:
        register_model_save_serializer(name, target)
    assert repr(name) in str(info.value)
    assert name not in model_save_serializer_names()


def test_a_path_that_does_not_import_is_a_typed_error_naming_path_and_module(
    tmp_path, monkeypatch, names
):
    broken = unique("broken_dependency")
    write_module(tmp_path, broken, "import not_installed_dependency_xyz\n")
    raising = unique("raising_module")
    write_module(tmp_path, raising, "raise RuntimeError('configuration missing')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cases = {
        "no_such_package_xyz.serializers:Cls": "no_such_package_xyz",
        f"{broken}:Cls": "not_installed_dependency_xyz",
        f"{raising}:Cls": raising,
        f"{__name__}:NoSuchClass": __name__,
        f"{__name__}:MY_PACK": __name__,
    }
    messages = {}
    for path, module in cases.items():
        name = unique("broken")
        names.append(name)
        register_model_save_serializer(name, path)
        with pytest.raises(SerializerImportError) as info:
            get_model_save_serializer(name)
        error = info.value
        assert isinstance(error, ImportError) and isinstance(error, SerializerRegistryError)
        assert (error.path, error.module, error.serializer_name) == (path, module, name)
        assert repr(path) in str(error) and repr(module) in str(error) and repr(name) in str(error)
        messages[path] = str(error)
        with pytest.raises(ScoreTemplateError, match="cannot be imported"):
            render_score_py(model_file_name="m.bin", model_serializer=name)
    assert "RuntimeError: configuration missing" in messages[f"{raising}:Cls"]
    assert "has no 'NoSuchClass'" in messages[f"{__name__}:NoSuchClass"]
    assert "is a str, not a serializer class" in messages[f"{__name__}:MY_PACK"]


def test_a_path_that_fails_with_the_missing_extra_raises_that_error(tmp_path, monkeypatch, names):
    module = unique("needs_extra")
    write_module(
        tmp_path,
        module,
        """
        from ocimodel.errors import MissingExtraError

        raise MissingExtraError("the 'fancy' serializer", "fancy")
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    name = unique("fancy")
    names.append(name)
    register_model_save_serializer(name, f"{module}:Fancy")
    with pytest.raises(MissingExtraError, match=r"pip install 'ocimodel\[fancy\]'"):
        get_model_save_serializer(name)


def test_a_factory_may_be_any_callable_and_a_plain_serde_is_wrapped(names):
    class Plain(SERDE):
        name = "plain"

        def serialize(self, data):
            return b"x"

        def deserialize(self, data):
            return data

    cloudpickle_name, plain_name, wrong_name = unique("fn"), unique("plain"), unique("wrong")
    names += [cloudpickle_name, plain_name, wrong_name]
    register_model_save_serializer(cloudpickle_name, lambda **options: OtherSerializer())
    register_model_save_serializer(plain_name, Plain)
    register_model_save_serializer(wrong_name, lambda: 42)
    assert type(get_model_save_serializer(cloudpickle_name)) is OtherSerializer
    loader = score_loader_of(cloudpickle_name)  # the factory is called to read its declaration
    assert loader == "other" and loader.source == score_loader_of("cloudpickle").source
    wrapped = get_model_save_serializer(plain_name)
    assert isinstance(wrapped, serde.CustomModelSaveSerializer) and wrapped.serde.name == "plain"
    assert score_loader_of(wrapped) == "custom"
    with pytest.raises(SerializeModelNotImplementedError, match="made a int"):
        get_model_save_serializer(wrong_name)


# --- declarations -----------------------------------------------------------------------------


def test_builtins_declare_their_loaders_and_templates():
    for name, template, needle in [
        ("cloudpickle", "score.py.jinja2", "pickle.load(fh)"),
        ("joblib", "score.py.jinja2", "joblib.load(path)"),
        ("onnx", "score_onnx.py.jinja2", "onnxruntime.InferenceSession(path"),
        ("custom", "score.py.jinja2", "_load_pickled(MODEL_SAVE_SERDE_FILE_NAME)"),
    ]:
        loader = score_loader_of(name)
        assert loader == name and loader.template == template and needle in loader.source
        assert loader.uses_companion is (name == "custom")
    assert input_loader_of("json") == "json" and "decode(parsed)" in input_loader_of("json").source
    assert input_loader_of("custom").uses_companion


def test_a_subclass_that_reads_differently_falls_back_to_its_companion(tmp_path):
    class Compressed(CloudpickleModelSaveSerializer):
        name = "compressed"

        def dump(self, model, file):
            import zlib

            import cloudpickle

            file.write(zlib.compress(cloudpickle.dumps(model)))

        def load(self, path):
            import pickle
            import zlib

            with open(path, "rb") as fh:
                return pickle.loads(zlib.decompress(fh.read()))

    class Strict(JsonInputSerializer):
        def deserialize(self, data):
            return [int(v) for v in super().deserialize(data)]

    class Sending(JsonInputSerializer):
        def to_request(self, data):
            return super().to_request(data)

    saver = Compressed()
    assert score_loader_of(saver) == "custom" and saver.score_companion() is saver
    assert input_loader_of(Strict()) == "custom" and input_loader_of(Sending()) == "json"
    saver.save({"w": 3}, tmp_path / "model.bin")
    assert (tmp_path / MODEL_SAVE_SERDE_FILE_NAME).is_file()
    generate_score_py(str(tmp_path), model_file_name="model.bin", model_save_serializer=saver)
    out = run_isolated(tmp_path, "out['model'] = score.load_model()")
    assert out["model"] == {"w": 3}  # loaded by the pickled Compressed, without ocimodel


def test_declared_code_must_be_a_valid_function_body():
    class Broken(ModelSaveSerializer):
        name = "broken"
        score_loader = "return (\n"

    class Undeclared(ModelSaveSerializer):
        score_loader = None

    class NoDecoder(InputSerializer):
        score_decoder = ""

        def serialize(self, data):
            return data

        def deserialize(self, data):
            return data

    with pytest.raises(ScoreTemplateError, match=r"'broken' declares is not a valid body"):
        render_score_py(model_file_name="m.bin", model_serializer=Broken)
    with pytest.raises(ScoreTemplateError, match="declares no score_loader"):
        render_score_py(model_file_name="m.bin", model_serializer=Undeclared)
    with pytest.raises(ScoreTemplateError, match="declares no score_decoder"):
        render_score_py(model_file_name="m.bin", input_serializer=NoDecoder())


def test_a_serializer_may_declare_a_template_of_its_own(tmp_path):
    template = tmp_path / "mine.py.jinja2"
    template.write_text(
        '{% include "score.py.jinja2" %}\nTHIRD_PARTY = {{ model_serializer | pyrepr }}\n'
    )

    class WithTemplate(LinearJsonSerializer):
        name = "with-template"
        score_template = str(template)

    source = render_score_py(model_file_name="model.json", model_serializer=WithTemplate())
    assert source.endswith("THIRD_PARTY = 'with-template'\n") and "params = json.load" in source
    with pytest.raises(ScoreTemplateError, match="absolute path"):
        render_score_py(model_file_name="m.bin", template=str(tmp_path / "missing.jinja2"))
