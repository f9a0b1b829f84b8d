"""The clinical core must stay free of Django (DESIGN.md §6) and of any third-party import."""

import ast
import subprocess
import sys
from pathlib import Path

import alliance_app.measures

PACKAGE_DIR = Path(alliance_app.measures.__file__).parent


def _imported_modules(path: Path) -> list[str]:
    """Top-level names of every absolute import in one file (relative imports stay inside)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def _python_files() -> list[Path]:
    files = sorted(PACKAGE_DIR.rglob("*.py"))
    assert len(files) >= 5, files
    return files


def test_it_imports_nothing_from_django_in_any_measures_module():
    offenders = [
        f"{path.name}: {name}"
        for path in _python_files()
        for name in _imported_modules(path)
        if name == "django" or name.startswith("django.")
    ]
    assert offenders == []


def test_it_imports_only_the_standard_library():
    offenders = [
        f"{path.name}: {name}"
        for path in _python_files()
        for name in _imported_modules(path)
        if name.split(".")[0] not in sys.stdlib_module_names and name != "__future__"
    ]
    assert offenders == []


def test_it_does_not_load_django_when_imported():
    code = (
        "import sys, alliance_app.measures; "
        "sys.exit(any(name.split('.')[0] == 'django' for name in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False)
    assert result.returncode == 0
