from __future__ import annotations

import inspect

from graphrun import errors


def test_every_error_has_a_code_status_and_docstring() -> None:
    classes = [
        c
        for _, c in inspect.getmembers(errors, inspect.isclass)
        if issubclass(c, errors.GraphrunError)
    ]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)), "codes must be unique"
    for cls in classes:
        assert cls.__doc__
        assert 400 <= cls.http_status < 600 or cls is errors.GraphrunError


def test_errors_that_are_builtin_kinds_inherit_both() -> None:
    assert issubclass(errors.AppLoadError, ImportError)
    assert issubclass(errors.ManifestError, ValueError)
    assert issubclass(errors.ValidationFailed, ValueError)


def test_transition_conflict_carries_what_the_caller_needs() -> None:
    exc = errors.TransitionConflict("r1", "resume", "completed")
    assert exc.to_dict() == {
        "code": "invalid_transition",
        "message": "Cannot resume run r1: it is completed.",
        "details": {"run_id": "r1", "action": "resume", "status": "completed"},
    }
    assert exc.http_status == 409
