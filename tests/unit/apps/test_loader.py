from __future__ import annotations

from pathlib import Path

import pytest

from graphrun import errors
from graphrun.apps import AppRegistry, load_app
from tests.conftest import APPS, EXAMPLES


def test_load_app_imports_workflows_with_schema_and_version() -> None:
    app = load_app(EXAMPLES / "orders")
    workflow, returns = app.workflows
    assert (workflow.kind, returns.kind) == ("python", "yaml")
    assert workflow.name == "orders.fulfil"
    assert workflow.input_schema["required"] == ["order_id", "items"]
    assert len(workflow.version) == 32
    assert load_app(EXAMPLES / "orders").workflows[0].version == workflow.version


def test_broken_app_raises_app_load_error_and_other_apps_still_load() -> None:
    with pytest.raises(errors.AppLoadError) as info:
        load_app(APPS / "broken")
    assert info.value.app == "broken"
    assert info.value.module == "broken.flows"
    assert "broken on purpose" in info.value.message
    registry = AppRegistry()
    registry.add(load_app(APPS / "linear"))
    assert registry.names() == ["linear.ten"]


def test_missing_attribute_and_wrong_type_are_named(tmp_path: Path) -> None:
    pkg = tmp_path / "wrongtype"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "flows.py").write_text("graph = 42\n")
    (tmp_path / "graphrun.toml").write_text(
        '[app]\nname = "wrongtype"\n[workflows]\na = "wrongtype.flows:graph"\nb = "wrongtype.flows:nope"\n'
    )
    with pytest.raises(errors.AppLoadError, match="name a StateGraph builder, a compiled graph"):
        load_app(tmp_path)


def test_registry_refuses_two_apps_with_one_name() -> None:
    registry = AppRegistry()
    registry.add(load_app(APPS / "linear"))
    with pytest.raises(errors.ManifestError, match="Two apps"):
        registry.add(load_app(APPS / "linear"))


def test_declared_signals_load_as_json_schemas() -> None:
    app = load_app(APPS / "primitives")
    signals = {w.name: w.signals for w in app.workflows}
    assert signals["primitives.mailbox"] == {"item": {"type": "integer"}, "note": {}}
    approve = signals["primitives.deadline"]["approve"]
    assert approve["required"] == ["by"]  # from the pydantic model Approval
    assert signals["primitives.sleeper"] == {}


def test_a_signal_naming_something_else_than_a_model_is_refused(tmp_path: Path) -> None:
    pkg = tmp_path / "sigapp"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "flows.py").write_text(
        "from langgraph.graph import StateGraph\nfrom typing_extensions import TypedDict\n"
        "class S(TypedDict):\n    x: int\ngraph = StateGraph(S)\ngraph.add_node('n', lambda s: s)\n"
        "graph.set_entry_point('n')\nNOT_A_MODEL = 42\n"
    )
    (tmp_path / "graphrun.toml").write_text(
        '[app]\nname = "sigapp"\n[workflows.a]\ngraph = "sigapp.flows:graph"\n'
        'signals = { go = "sigapp.flows:NOT_A_MODEL" }\n'
    )
    with pytest.raises(errors.AppLoadError, match="must name a pydantic model"):
        load_app(tmp_path)


def _app_with_step(root: Path, name: str, value: str) -> Path:
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text("")
    (root / name / "steps.py").write_text(f"def work(state):\n    return {{'by': {value!r}}}\n")
    (root / "flow.yaml").write_text(
        f"state: {{by: {{}}}}\nstart: w\nnodes:\n  w: {{kind: python, function: '{name}.steps:work'}}\n"
    )
    (root / "graphrun.toml").write_text(f'[app]\nname = "{name}"\n[workflows]\nf = "flow.yaml"\n')
    return root


def test_each_app_has_its_own_registry_of_functions(tmp_path: Path) -> None:
    alpha = load_app(_app_with_step(tmp_path / "a", "alpha_reg", "alpha"))
    beta = load_app(_app_with_step(tmp_path / "b", "beta_reg", "beta"))
    assert list(alpha.functions) == ["alpha_reg.steps:work"]
    assert list(beta.functions) == ["beta_reg.steps:work"]
    assert alpha.functions.resolve("alpha_reg.steps:work")({}) == {"by": "alpha"}
    assert beta.functions.resolve("beta_reg.steps:work")({}) == {"by": "beta"}
    # an app cannot name another app's module: it is imported from outside its folder
    with pytest.raises(errors.AppLoadError, match="already imported"):
        beta.functions.resolve("alpha_reg.steps:work")


def test_an_app_module_changed_since_this_process_imported_it_is_refused(tmp_path: Path) -> None:
    root = _app_with_step(tmp_path / "s", "stale_app", "first")
    first = load_app(root)
    assert first.functions.resolve("stale_app.steps:work")({}) == {"by": "first"}
    assert load_app(root).version == first.version  # unchanged: loads again
    (root / "stale_app" / "steps.py").write_text("def work(state):\n    return {'by': 'second'}\n")
    with pytest.raises(errors.AppLoadError, match="changed on disk since this process imported"):
        load_app(root)


def test_stored_files_unpack_to_the_same_version_and_bad_zips_are_refused(tmp_path: Path) -> None:
    import io
    import zipfile

    from graphrun.apps.loader import code_version
    from graphrun.apps.snapshots import pack, unpack

    root = _app_with_step(tmp_path / "p", "packed_app", "x")
    version = code_version(root)
    copy = unpack(pack(root, "packed_app"), tmp_path / "copy", version)
    assert code_version(copy) == version
    for entry in ("../escape.py", "/abs.py", ".", "a/../../b.py"):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(entry, "x = 1\n")
        with pytest.raises(errors.AppLoadError):
            unpack(buffer.getvalue(), tmp_path / "bad", "v")
    with pytest.raises(errors.AppLoadError, match="damaged"):
        unpack(b"not a zip", tmp_path / "bad", "v")
    assert not (tmp_path / "bad").exists()
    assert not (tmp_path / "escape.py").exists()
