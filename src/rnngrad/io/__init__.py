"""What a user hands in: weight and array files (:mod:`~rnngrad.io.files`, never
unpickled), model specs (:mod:`~rnngrad.io.spec`) and models of their own
(:mod:`~rnngrad.io.usermodel`)."""

from rnngrad.io.files import (
    SUPPORTED_WEIGHT_SUFFIXES,
    load_array,
    load_npy,
    load_tensor_file,
    parse_float_list,
)

__all__ = [
    "SUPPORTED_WEIGHT_SUFFIXES",
    "load_array",
    "load_npy",
    "load_tensor_file",
    "parse_float_list",
]
