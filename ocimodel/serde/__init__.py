"""Serializers of models (to the artifact's model file) and of model inputs (to request bodies).

``SERDE`` is the protocol both roles share. Each role has a registry of names (a third-party
package adds its own with :func:`register_model_save_serializer` /
:func:`register_model_input_serializer`), and each serializer declares what the generated
score.py runs to read back what it wrote (:mod:`ocimodel.serde.score_code`).

Modules: ``protocol`` (SERDE), ``registry`` (names and their errors), ``score_code`` (score.py's
loaders and decoders), ``hashing`` (atomic hashed writes), ``model`` (model save serializers)
and ``inputs`` (model input serializers).
"""

from ocimodel.files import sha256_file
from ocimodel.layout import MODEL_INPUT_SERDE_FILE_NAME, MODEL_SAVE_SERDE_FILE_NAME
from ocimodel.serde.hashing import HashingWriter, write_hashed
from ocimodel.serde.inputs import (
    CustomInputSerializer,
    InputSerializer,
    InputSerializerRefusedError,
    JsonInputSerializer,
    ModelInputSerializerType,
    get_model_input_serializer,
    input_loader_of,
    model_input_serializer_names,
    register_model_input_serializer,
    unregister_model_input_serializer,
)
from ocimodel.serde.model import (
    CloudpickleModelSaveSerializer,
    CustomModelSaveSerializer,
    JoblibModelSaveSerializer,
    ModelNotPicklableError,
    ModelSaveSerializer,
    ModelSerializerType,
    companion_of,
    get_model_save_serializer,
    model_save_serializer_names,
    register_model_save_serializer,
    save_companion_serde,
    score_loader_of,
    unregister_model_save_serializer,
)
from ocimodel.serde.protocol import SERDE
from ocimodel.serde.registry import (
    SerializerAlreadyRegisteredError,
    SerializerImportError,
    SerializerRegistryError,
)
from ocimodel.serde.score_code import (
    COMPANION_SCORE_DECODER,
    COMPANION_SCORE_LOADER,
    DEFAULT_SCORE_TEMPLATE,
    ScoreDecoder,
    ScoreLoader,
)
from ocimodel.serde.score_code import CUSTOM as CUSTOM  # score.py reads serde.CUSTOM

__all__ = [
    "COMPANION_SCORE_DECODER",
    "COMPANION_SCORE_LOADER",
    "DEFAULT_SCORE_TEMPLATE",
    "MODEL_INPUT_SERDE_FILE_NAME",
    "MODEL_SAVE_SERDE_FILE_NAME",
    "SERDE",
    "CloudpickleModelSaveSerializer",
    "CustomInputSerializer",
    "CustomModelSaveSerializer",
    "HashingWriter",
    "InputSerializer",
    "InputSerializerRefusedError",
    "JoblibModelSaveSerializer",
    "JsonInputSerializer",
    "ModelInputSerializerType",
    "ModelNotPicklableError",
    "ModelSaveSerializer",
    "ModelSerializerType",
    "ScoreDecoder",
    "ScoreLoader",
    "SerializerAlreadyRegisteredError",
    "SerializerImportError",
    "SerializerRegistryError",
    "companion_of",
    "get_model_input_serializer",
    "get_model_save_serializer",
    "input_loader_of",
    "model_input_serializer_names",
    "model_save_serializer_names",
    "register_model_input_serializer",
    "register_model_save_serializer",
    "save_companion_serde",
    "score_loader_of",
    "sha256_file",
    "unregister_model_input_serializer",
    "unregister_model_save_serializer",
    "write_hashed",
]
