"""Serve single files of installed packages as static files (see PACKAGE_ASSETS in settings)."""

from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage


class PackageAssetFinder(BaseFinder):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.assets: dict[str, Path] = {
            name: Path(path) for name, path in settings.PACKAGE_ASSETS.items()
        }

    def check(self, **kwargs):
        return [
            Error(f"PACKAGE_ASSETS: {path} for {name!r} does not exist", id="alliance.E001")
            for name, path in self.assets.items()
            if not path.is_file()
        ]

    def find(self, path, find_all=False, **kwargs):
        found = self.assets.get(path)
        if found is None:
            return []
        return [str(found)] if find_all else str(found)

    def list(self, ignore_patterns):
        for name, path in self.assets.items():
            storage = FileSystemStorage(location=str(path.parent))
            storage.prefix = str(Path(name).parent)
            yield path.name, storage
