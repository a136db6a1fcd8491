from __future__ import annotations

from pathlib import Path

import pytest

from graphrun import errors
from graphrun.apps import read_manifest


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "graphrun.toml").write_text(text)
    return tmp_path


def test_manifest_reads_string_and_table_workflows(tmp_path: Path) -> None:
    manifest = read_manifest(
        write(
            tmp_path,
            '[app]\nname = "shop"\ndependencies = ["httpx==0.28.1"]\n'
            '[workflows]\na = "shop.flows:a"\nb = { graph = "shop.flows:b", input = "shop.models:In" }\n',
        )
    )
    assert manifest.name == "shop"
    assert manifest.dependencies == ("httpx==0.28.1",)
    assert [(w.name, w.graph, w.input) for w in manifest.workflows] == [
        ("a", "shop.flows:a", None),
        ("b", "shop.flows:b", "shop.models:In"),
    ]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('[app]\nname = "Shop"\n[workflows]\na = "m:a"\n', "name must match"),
        ('[app]\nname = "../x"\n[workflows]\na = "m:a"\n', "name must match"),
        ('[app]\nname = "shop"\n[workflows]\n', "at least one"),
        ('[app]\nname = "shop"\n[workflows]\n"A-b" = "m:a"\n', "workflow name"),
        ('[app]\nname = "shop"\n[workflows]\na = "m"\n', "module.path:attribute"),
        ('[app]\nname = "shop"\n[workflows]\na = "json:loads"\n', "shadow"),
        ('[app]\nname = "shop"\n[workflows]\na = "langgraph.graph:x"\n', "shadow"),
        ('[app]\nname = "shop"\n[workflows]\na = "flows/a.yaml"\n', "does not exist"),
        ('[app]\nname = "shop"\n[workflows]\na = "../a.yaml"\n', "inside the app folder"),
        ('[app]\nname = "shop"\n[workflows]\na = "/etc/a.yaml"\n', "inside the app folder"),
        ('[app]\nname = "shop"\nversion = 2\n[workflows]\na = "m:a"\n', "unknown keys"),
        ("[app\n", "not valid TOML"),
        ('[app]\nname = "shop"\n[workflows]\na = "m:a"\n[extra]\n', "unknown sections"),
    ],
)
def test_manifest_rejects_bad_manifests_with_the_reason(
    tmp_path: Path, text: str, match: str
) -> None:
    with pytest.raises(errors.ManifestError, match=match):
        read_manifest(write(tmp_path, text))


def test_manifest_missing_is_app_not_found(tmp_path: Path) -> None:
    with pytest.raises(errors.AppNotFound):
        read_manifest(tmp_path)
    with pytest.raises(errors.AppNotFound):
        read_manifest(tmp_path / "nope")


def test_manifest_reads_declared_signals(tmp_path: Path) -> None:
    manifest = read_manifest(
        write(
            tmp_path,
            '[app]\nname = "shop"\n[workflows.a]\ngraph = "shop.flows:a"\n'
            'signals = { paid = "shop.models:Paid", note = {}, "size.v2" = { type = "integer" } }\n',
        )
    )
    (workflow,) = manifest.workflows
    assert workflow.signals == (
        ("paid", "shop.models:Paid"),
        ("note", {}),
        ("size.v2", {"type": "integer"}),
    )


@pytest.mark.parametrize(
    ("signals", "match"),
    [
        ('"paid"', "table of name = schema"),
        ('{ "no spaces" = {} }', "a name must match"),
        ('{ "-x" = {} }', "a name must match"),
        ('{ paid = { type = "no-such-type" } }', "not a valid JSON Schema"),
        ('{ paid = "json:loads" }', "shadow"),
        ("{ paid = 3 }", "module.path:attribute"),
    ],
)
def test_manifest_rejects_bad_signal_declarations(tmp_path: Path, signals: str, match: str) -> None:
    text = f'[app]\nname = "shop"\n[workflows.a]\ngraph = "shop.flows:a"\nsignals = {signals}\n'
    with pytest.raises(errors.ManifestError, match=match):
        read_manifest(write(tmp_path, text))


@pytest.mark.parametrize(
    "spec", ["requests", "x @ file:///etc/passwd", "--index-url=https://evil.example/simple"]
)
def test_manifest_refuses_dependencies_that_break_the_install_rules(
    tmp_path: Path, spec: str
) -> None:
    text = f'[app]\nname = "shop"\ndependencies = [{spec!r}]\n[workflows]\na = "m:a"\n'
    with pytest.raises(errors.RequirementRejected) as info:
        read_manifest(write(tmp_path, text.replace("'", '"')))
    assert [p["spec"] for p in info.value.problems] == [spec]


def test_a_yaml_workflow_linked_outside_the_app_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("start: a\n")
    app = tmp_path / "app"
    app.mkdir()
    (app / "flow.yaml").symlink_to(outside)
    with pytest.raises(errors.ManifestError, match="outside the app folder"):
        read_manifest(write(app, '[app]\nname = "shop"\n[workflows]\na = "flow.yaml"\n'))


@pytest.mark.parametrize(
    ("name", "target", "match"),
    [
        ("json", "shop.flows:a", "standard library"),
        ("langgraph", "shop.flows:a", "standard library"),
        ("shop", "Shop.flows:a", "must match"),
        ("shop", "shop._private:a", "must match"),
        ("shop", "shop." + "m" * 80 + ":a", "must match"),
    ],
)
def test_app_and_module_names_are_checked(
    tmp_path: Path, name: str, target: str, match: str
) -> None:
    text = f'[app]\nname = "{name}"\n[workflows]\na = "{target}"\n'
    with pytest.raises(errors.ManifestError, match=match):
        read_manifest(write(tmp_path, text))
