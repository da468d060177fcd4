"""Registration by decorator, entry points, lazy import errors, and unknown-name messages."""

import sys
import textwrap
from types import SimpleNamespace

import pytest

import nlbench.core.registry as registry_mod
from nlbench.core.errors import UnknownNameError, UsageError
from nlbench.core.registry import SCENARIOS, Registry, get_method, method_names


def test_builtin_names_are_registered():
    assert {"split-digits", "permuted-digits"} <= set(SCENARIOS.names())
    assert {"naive", "cumulative", "ewc", "si", "lwf", "replay", "agem", "gem"} <= set(method_names())


def test_unknown_method_lists_known_names_and_closest_match():
    with pytest.raises(UnknownNameError) as info:
        get_method("ewk")
    msg = str(info.value)
    assert "Unknown method 'ewk'" in msg
    assert "Did you mean 'ewc'?" in msg
    assert "naive" in msg and "replay" in msg


def test_unknown_scenario_without_close_match():
    with pytest.raises(UnknownNameError, match="Known scenarios: .*split-digits") as info:
        SCENARIOS.get("cifar-1000000")
    assert "Did you mean" not in str(info.value)


@pytest.fixture
def plugin_package(tmp_path, monkeypatch):
    """A throw-away package with one good and one broken plugin module."""
    pkg = tmp_path / "fakeplugins"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "good_one.py").write_text(textwrap.dedent("""
        from tests_fake_registry import REG

        @REG.register
        class Good:
            NAME = "good-one"
    """))
    (pkg / "broken_one.py").write_text("import a_module_that_does_not_exist\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("thing", "fakeplugins", "nlbench.test-things")
    monkeypatch.setitem(sys.modules, "tests_fake_registry", SimpleNamespace(REG=reg))
    yield reg
    for name in [m for m in sys.modules if m.startswith("fakeplugins")]:
        del sys.modules[name]


def test_broken_module_fails_only_when_requested(plugin_package):
    reg = plugin_package
    assert reg.names() == ["broken-one", "good-one"]
    assert reg.get("good-one").NAME == "good-one"
    with pytest.raises(UsageError, match="thing 'broken-one' failed to import: ModuleNotFoundError"):
        reg.get("broken-one")
    assert [name for name, _ in reg.items()] == ["good-one"]


def test_entry_points_are_loaded_by_name(monkeypatch):
    class Plugin:
        NAME = "third-party"

    ep = SimpleNamespace(name="third-party", value="pkg:Plugin", load=lambda: Plugin)
    monkeypatch.setattr(registry_mod, "entry_points",
                        lambda group: [ep] if group == "nlbench.scenarios-test" else [])
    reg = Registry("scenario", "scenarios", "nlbench.scenarios-test")
    assert "third-party" in reg.names()
    assert reg.get("third-party") is Plugin


def test_register_requires_a_name_and_rejects_duplicates():
    reg = Registry("thing", "scenarios", "nlbench.none")

    class NoName:
        pass

    with pytest.raises(TypeError, match="needs a non-empty string NAME"):
        reg.register(NoName)

    class A:
        NAME = "same"

    class B:
        NAME = "same"

    reg.register(A)
    reg.register(A)  # re-registering the same class (module reload) is fine
    with pytest.raises(UsageError, match="registered twice"):
        reg.register(B)
