"""Dependency specs: docs/RELIABILITY.md section 3.3, bad-input rows 27-32."""

from __future__ import annotations

import pytest

from graphrun import errors
from graphrun.apps.requirements import engine_packages, validate_requirements

HASH = "sha256:" + "ab" * 32

REFUSED = {
    # row 27: shell in a marker
    "foo; rm -rf /": "control or shell characters",
    # row 28: URLs, VCS, paths (the @ forms parse in packaging)
    "git+https://github.com/x/y.git": "not a valid PEP 508 requirement",
    "y @ git+https://github.com/x/y.git": "URLs, VCS and local paths",
    "foo @ https://example.com/x.tar.gz": "URLs, VCS and local paths",
    "foo @ file:///etc/passwd": "URLs, VCS and local paths",
    "foo @ ./bar": "URLs, VCS and local paths",
    "./localpkg": "not a valid PEP 508 requirement",
    "../../x": "not a valid PEP 508 requirement",
    # row 29: options, as a spec or a requirements line
    "-e .": "options",
    "--index-url=https://evil.example/simple": "options",
    "--extra-index-url https://evil.example/simple": "options",
    "-r /etc/passwd": "options",
    "--trusted-host evil.example": "options",
    # row 30: shell and control characters
    "foo$(id)": "control or shell characters",
    "foo`id`": "control or shell characters",
    "foo==1.0\nbar==2.0": "control or shell characters",
    "foo==1.0\x00": "control or shell characters",
    # row 31: not pinned to one version
    "requests": "pinned to exactly one version",
    "requests>=2": "pinned to exactly one version",
    "requests===1.0": "pinned to exactly one version",
    "requests==2.*": "pinned to exactly one version",
    "requests==2.0,!=2.1": "pinned to exactly one version",
    # markers, extras, bad hashes, bad names
    "requests==2.32.3 ; python_version > '3'": "control or shell characters",
    "requests[socks]==2.32.3": "extra 'socks' is not allowed",
    "six==1.16.0 --hash=md5:abc": "must be sha256",
    "six==1.16.0 --hash=sha256:xyz": "must be sha256",
    "a" * 101 + "==1.0": "not a valid package name",
    # graphrun runs on pydantic: an app may not pin another version of it
    "pydantic==1.10.0": "graphrun runs on pydantic",
}


@pytest.mark.parametrize(("spec", "reason"), list(REFUSED.items()), ids=list(range(len(REFUSED))))
def test_each_bad_spec_is_refused_with_its_reason(spec: str, reason: str) -> None:
    with pytest.raises(errors.RequirementRejected) as info:
        validate_requirements([spec], engine_packages=engine_packages(), app="shop")
    (problem,) = info.value.problems
    assert reason in problem["message"], problem
    assert info.value.http_status == 422


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(errors.RequirementRejected) as info:
        validate_requirements(["requests", "six==1.16.0", "-e .", "six==1.17.0"], app="shop")
    assert [p["spec"] for p in info.value.problems] == ["requests", "-e .", "six==1.17.0"]


def test_row_32_allow_list_package_count_and_extras_are_deployment_policy() -> None:
    with pytest.raises(errors.RequirementRejected, match="allow-list"):
        validate_requirements(["six==1.16.0"], allowed={"httpx"})
    with pytest.raises(errors.RequirementRejected, match="at most 2"):
        validate_requirements(["a==1", "b==1", "c==1"], max_packages=2)
    (pin,) = validate_requirements(
        ["Requests[SOCKS]==2.32.3"], allowed={"requests"}, allowed_extras={"requests[socks]"}
    )
    assert pin.requirement == "requests[socks]==2.32.3"


def test_good_specs_come_back_normalized_with_their_hashes() -> None:
    pins = validate_requirements(
        ["Six==1.16.0", f"tomli_w==1.0.0 --hash={HASH} --hash={HASH.replace('ab', 'cd')}"],
        engine_packages={"pydantic": "2.9.0"},
    )
    assert [(p.name, p.version) for p in pins] == [("six", "1.16.0"), ("tomli-w", "1.0.0")]
    assert pins[1].line == f"tomli-w==1.0.0 --hash={HASH} --hash={HASH.replace('ab', 'cd')}"
    # the version graphrun already runs on is fine
    assert validate_requirements(["pydantic==2.9.0"], engine_packages={"pydantic": "2.9.0"})


def test_engine_packages_are_what_graphrun_runs_on() -> None:
    found = engine_packages()
    assert {"langgraph", "sqlalchemy", "pydantic"} <= set(found)
    assert "pytest" not in found  # a test tool, not a runtime dependency
