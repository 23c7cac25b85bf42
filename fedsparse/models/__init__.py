"""Model registry; importing this package registers every built-in model."""

from fedsparse.models import cnn, mlp, resnet  # noqa: F401  (registration side effects)
from fedsparse.models.registry import MODELS, build_model, count_parameters

__all__ = ["MODELS", "build_model", "count_parameters"]
