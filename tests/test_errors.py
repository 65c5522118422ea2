"""User errors are BrainAgeErrors that Python callers can also catch as the matching builtin."""

from __future__ import annotations

import pytest

from brainage.errors import BrainAgeError, InputError, NotFoundError, ValidationError


def test_error_kinds_subclass_builtins():
    assert issubclass(InputError, ValueError) and issubclass(InputError, BrainAgeError)
    assert issubclass(NotFoundError, FileNotFoundError)
    assert issubclass(ValidationError, ValueError)


@pytest.mark.parametrize(("call", "builtin"), [
    (lambda: __import__("brainage.training.config", fromlist=["x"]).load_train_config(
        "no/such/file.yaml"), FileNotFoundError),
    (lambda: __import__("brainage.training.config", fromlist=["x"]).load_train_config(
        None, ["epoch=3"]), ValueError),
    (lambda: __import__("brainage.training.config", fromlist=["x"]).load_train_config(
        None, ["epochs=abc"]), TypeError),
    (lambda: __import__("brainage.models", fromlist=["x"]).create_model("sfcnn"), ValueError),
    (lambda: __import__("brainage.models", fromlist=["x"]).create_model("sfcn", widht=3),
     ValueError),
    (lambda: __import__("brainage.runs", fromlist=["x"]).read_run_info("no/such/run"),
     FileNotFoundError),
])
def test_user_errors_are_caught_by_kind(call, builtin):
    with pytest.raises(builtin) as info:
        call()
    assert isinstance(info.value, BrainAgeError) and "Fix" in str(info.value)
