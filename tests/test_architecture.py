"""The layering of docs/architecture.md "Layout", enforced: the import-linter contracts in pyproject.toml
(the same check `make lint` runs), and a rule import-linter cannot see because it works on modules, not
names: an app never imports another app's private (underscore) names."""

from __future__ import annotations

import ast
from pathlib import Path

from importlinter import cli as importlinter_cli

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "tuijin"


def _app_of(module: str) -> str:
    """`tuijin.customers.api` -> `customers`; top-level modules (`tuijin.urls`) are their own app."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _module_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def cross_app_private_imports(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """`module` (dotted, inside tuijin) importing another app's `_names`, as "module -> target._name"."""
    found = []
    here = _app_of(module)
    for node in ast.walk(ast.parse(source)):
        targets: list[tuple[str, str]] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            targets = [(target, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            # `import tuijin.x._y`: the private part is a module name
            targets = [(alias.name.rsplit(".", 1)[0], alias.name.rsplit(".", 1)[-1])
                       for alias in node.names if "." in alias.name]
        for target, name in targets:
            if not target.startswith("tuijin.") or _app_of(target) == here:
                continue
            private_parts = [p for p in target.split(".") + [name] if _private(p)]
            if private_parts:
                found.append(f"{module} -> {target}.{name}")
    return found


def test_the_layer_contracts_hold():
    # lint-imports reads [tool.importlinter] from pyproject.toml in the working directory.
    import os

    old = os.getcwd()
    os.chdir(ROOT)
    try:
        exit_code = importlinter_cli.lint_imports(no_cache=True)
    finally:
        os.chdir(old)
    assert exit_code == importlinter_cli.EXIT_STATUS_SUCCESS, "lint-imports: a contract is broken (see above)"


def test_no_app_imports_another_apps_private_names():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        found += cross_app_private_imports(path.read_text(encoding="utf-8"), _module_of(path),
                                          is_package=path.name == "__init__.py")
    assert found == []


def test_the_private_name_check_sees_what_it_should():
    check = cross_app_private_imports
    assert check("from tuijin.org.selectors import _report_ids", "tuijin.forecasting.selectors")
    assert check("def f():\n    from tuijin.customers.api import OwnerOut, _owner_for", "tuijin.pipeline.api")
    assert check("from tuijin.demo import _plan", "tuijin.core.x")
    assert check("import tuijin.org._internal", "tuijin.goals.views")
    # within one app, public names, dunders and other packages are fine
    assert not check("from tuijin.customers.api import _owner_for", "tuijin.customers.grading")
    assert not check("from .selectors import _visible", "tuijin.customers.api")
    assert not check("from tuijin.customers.api import body_fields", "tuijin.pipeline.api")
    assert not check("from tuijin import __version__", "tuijin.cli")
    assert not check("from django.db.models import _private", "tuijin.goals.models")
    # a relative import that climbs out of the app is resolved and caught
    assert check("from ..org.selectors import _report_ids", "tuijin.forecasting.selectors")
