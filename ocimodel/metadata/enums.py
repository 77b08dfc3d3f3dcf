"""Enumerations of model metadata: keys, categories, use case types and frameworks.

Members are plain strings (``Framework.SCIKIT_LEARN == "scikit-learn"``) so they can be passed
anywhere a string is expected; ``values()`` lists the accepted strings for validation.
"""

from __future__ import annotations

from collections.abc import Iterator


class _StringConstantsMeta(type):
    """Metaclass giving a class of string constants ``values()``, ``keys()`` and ``in``."""

    def _members(cls) -> dict[str, str]:
        return {
            name: value
            for klass in reversed(cls.__mro__)
            for name, value in vars(klass).items()
            if name.isupper() and isinstance(value, str)
        }

    def values(cls) -> list[str]:
        """Every accepted string, in declaration order."""
        return list(cls._members().values())

    def keys(cls) -> list[str]:
        """Every constant name, in declaration order."""
        return list(cls._members().keys())

    def __contains__(cls, item: object) -> bool:
        return item in cls._members().values()

    def __iter__(cls) -> Iterator[str]:
        return iter(cls._members().values())


class StringConstants(str, metaclass=_StringConstantsMeta):
    """Base of the string constant classes below."""


class UseCaseType(StringConstants):
    """Use case types the model catalog accepts for the ``UseCaseType`` taxonomy key."""

    ANOMALY_DETECTION = "anomaly_detection"
    BINARY_CLASSIFICATION = "binary_classification"
    CLUSTERING = "clustering"
    DIMENSIONALITY_REDUCTION = "dimensionality_reduction/representation"
    IMAGE_CLASSIFICATION = "image_classification"
    MULTINOMIAL_CLASSIFICATION = "multinomial_classification"
    NER = "ner"
    OBJECT_LOCALIZATION = "object_localization"
    OTHER = "other"
    RECOMMENDER = "recommender"
    REGRESSION = "regression"
    SENTIMENT_ANALYSIS = "sentiment_analysis"
    TIME_SERIES_FORECASTING = "time_series_forecasting"
    TOPIC_MODELING = "topic_modeling"


class Framework(StringConstants):
    """Frameworks the model catalog accepts for the ``Framework`` taxonomy key."""

    BERT = "bert"
    CUML = "cuml"
    EMBEDDING_ONNX = "embedding_onnx"
    EMCEE = "emcee"
    ENSEMBLE = "ensemble"
    FLAIR = "flair"
    GENSIM = "gensim"
    H20 = "h2o"
    KERAS = "keras"
    LIGHT_GBM = "lightgbm"
    MXNET = "mxnet"
    NLTK = "nltk"
    ORACLE_AUTOML = "oracle_automl"
    OTHER = "other"
    PROPHET = "prophet"
    PYMC3 = "pymc3"
    PYOD = "pyod"
    PYSTAN = "pystan"
    PYTORCH = "pytorch"
    SCIKIT_LEARN = "scikit-learn"
    SKTIME = "sktime"
    SPACY = "spacy"
    SPARK = "pyspark"
    STATSMODELS = "statsmodels"
    TENSORFLOW = "tensorflow"
    TRANSFORMERS = "transformers"
    WORD2VEC = "word2vec"
    XGBOOST = "xgboost"


class MetadataCustomCategory(StringConstants):
    """Categories of custom metadata items."""

    OTHER = "Other"
    PERFORMANCE = "Performance"
    TRAINING_AND_VALIDATION_DATASETS = "Training and Validation Datasets"
    TRAINING_ENV = "Training Environment"
    TRAINING_PROFILE = "Training Profile"


class MetadataCustomKeys(StringConstants):
    """Keys of the custom metadata items that ocimodel fills in itself."""

    CLIENT_LIBRARY = "ClientLibrary"
    CONDA_ENVIRONMENT = "CondaEnvironment"
    CONDA_ENVIRONMENT_PATH = "CondaEnvironmentPath"
    ENVIRONMENT_TYPE = "EnvironmentType"
    MODEL_ARTIFACTS = "ModelArtifacts"
    MODEL_FILE_NAME = "ModelFileName"
    MODEL_SERIALIZATION_FORMAT = "ModelSerializationFormat"
    SLUG_NAME = "SlugName"
    TRAINING_DATASET = "TrainingDataset"
    TRAINING_DATASET_SIZE = "TrainingDatasetSize"
    VALIDATION_DATASET = "ValidationDataset"
    VALIDATION_DATASET_SIZE = "ValidationDatasetSize"


class MetadataTaxonomyKeys(StringConstants):
    """The fixed keys of taxonomy (defined) metadata."""

    USE_CASE_TYPE = "UseCaseType"
    FRAMEWORK = "Framework"
    FRAMEWORK_VERSION = "FrameworkVersion"
    ALGORITHM = "Algorithm"
    HYPERPARAMETERS = "Hyperparameters"
    ARTIFACT_TEST_RESULT = "ArtifactTestResults"


class MetadataCustomPrintColumns(StringConstants):
    """Column names of ``ModelCustomMetadata.to_dataframe()``."""

    KEY = "Key"
    VALUE = "Value"
    DESCRIPTION = "Description"
    CATEGORY = "Category"


class MetadataTaxonomyPrintColumns(StringConstants):
    """Column names of ``ModelTaxonomyMetadata.to_dataframe()``."""

    KEY = "Key"
    VALUE = "Value"
