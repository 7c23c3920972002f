"""Interop: PyTorch state dicts, modules and safetensors files, Keras weight arrays and .keras
model files, ONNX export and import.

Nothing here imports torch, Keras or onnx at import time: the NumPy converters work without
them, and the functions that need one import it when called. See ``docs/interop.md``.
"""

from .keras_io import (from_keras_weights, keras_charlm, load_keras_weights, save_keras_charlm,
                       to_keras_weights)
from .onnx_export import onnx_weights, to_onnx
from .onnx_import import OnnxModel, import_onnx
from .onnx_nodes import OnnxImportError, RecurrentNode, node_to_layer
from .torch_io import (from_torch, from_torch_state_dict, load_model_state_dict,
                       load_torch_state_dict, model_state_dict, save_safetensors, to_torch,
                       torch_state_dict)

__all__ = [
    "from_keras_weights", "keras_charlm", "load_keras_weights", "save_keras_charlm",
    "to_keras_weights",
    "onnx_weights", "to_onnx",
    "OnnxImportError", "OnnxModel", "RecurrentNode", "import_onnx", "node_to_layer",
    "from_torch", "from_torch_state_dict", "load_model_state_dict", "load_torch_state_dict",
    "model_state_dict", "save_safetensors", "to_torch", "torch_state_dict",
]
