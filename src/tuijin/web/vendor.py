"""Serve only the front-end files the pages use (settings.TUIJIN_VENDOR_FILES) from node_modules.

Mapping the whole node_modules folder to /static/vendor/ published every package's sources, tests,
package.json files and source maps; anything not on the list is now a 404, and collectstatic copies
only the listed files.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Warning as CheckWarning
from django.core.files.storage import FileSystemStorage

PREFIX = "vendor"


class VendorFinder(BaseFinder):
    def __init__(self, *args, **kwargs):
        self.root = Path(settings.TUIJIN_VENDOR_ROOT)
        self.files = list(settings.TUIJIN_VENDOR_FILES)
        self.storage = FileSystemStorage(location=str(self.root))
        self.storage.prefix = PREFIX  # collectstatic and WhiteNoise put the files under vendor/

    def check(self, **kwargs):
        missing = [f for f in self.files if not (self.root / f).is_file()]
        if missing:
            return [CheckWarning(f"Front-end files missing (run `npm ci`): {', '.join(missing)}",
                                 id="tuijin.W001")]
        return []

    def find(self, path, find_all=False, **kwargs):
        find_all = find_all or kwargs.get("all", False)
        name = path.removeprefix(f"{PREFIX}/") if path.startswith(f"{PREFIX}/") else None
        found = None
        if name in self.files and (self.root / name).is_file():
            found = str(self.root / name)
        if find_all:
            return [found] if found else []
        return found or []  # Django's finders answer [] for "not here"

    def list(self, ignore_patterns):
        for name in self.files:
            if (self.root / name).is_file():
                yield name, self.storage
