"""The apps form a stack and imports point down only (STYLE.md, "Layers, one way").

measures and lib ← accounts ← audit ← clinic ← feedback ← dashboards ← research ← seeding. An app
may import its own modules and those of the apps below it, never one above: when a lower app seems
to need a higher one, the rule belongs lower or the caller passes the value in. Imports inside
functions count too, since they tie the apps together just the same.
"""

import ast
from pathlib import Path

import pytest

import alliance_app

PACKAGE_DIR = Path(alliance_app.__file__).parent

LAYERS = {
    "measures": 0,
    "lib": 0,
    "accounts": 1,
    "audit": 2,
    "clinic": 3,
    "feedback": 4,
    "dashboards": 5,
    "research": 6,
    "seeding": 7,
}


def _app_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "alliance_app" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in LAYERS else None


def _imports(path: Path, app_dir: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, relative ones made absolute."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(("alliance_app", app_dir.name, *path.relative_to(app_dir).parts[:-1]))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # `from alliance_app import clinic` names the app in the imported name.
            if module == "alliance_app":
                found += [(node.lineno, f"alliance_app.{alias.name}") for alias in node.names]
    return found


def upward_imports(root: Path = PACKAGE_DIR) -> list[str]:
    offenders = []
    for app, level in LAYERS.items():
        for path in sorted((root / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # generated; Django orders them by their dependencies
            for line, module in _imports(path, root / app):
                target = _app_of(module)
                if target is not None and LAYERS[target] > level:
                    offenders.append(f"{path.relative_to(root)}:{line} imports {module}")
    return offenders


def test_every_layer_exists():
    assert sorted(p.name for p in PACKAGE_DIR.iterdir() if (p / "__init__.py").exists()) == sorted(
        LAYERS
    )


def test_no_app_imports_an_app_above_it():
    assert upward_imports() == []


@pytest.mark.parametrize(
    ("app", "source"),
    [
        ("accounts", "from alliance_app.clinic.models import Client\n"),
        ("clinic", "def f():\n    from alliance_app.feedback import rollups\n"),
        ("feedback", "from alliance_app.dashboards import charts\n"),
        ("measures", "from alliance_app import accounts\n"),
    ],
)
def test_it_finds_an_upward_import(tmp_path, app, source):
    for name in LAYERS:
        (tmp_path / name).mkdir()
    (tmp_path / app / "bad.py").write_text(source)
    assert len(upward_imports(tmp_path)) == 1


def test_it_resolves_relative_imports_inside_an_app(tmp_path):
    for name in LAYERS:
        (tmp_path / name).mkdir()
    (tmp_path / "clinic" / "sub").mkdir()
    (tmp_path / "clinic" / "sub" / "mod.py").write_text("from ..models import Client\n")
    (tmp_path / "clinic" / "ok.py").write_text("from alliance_app.accounts.models import User\n")
    assert upward_imports(tmp_path) == []
