"""Third-party front-end files are served from installed packages: no CDN, no copies."""

import subprocess
from pathlib import Path

from django.contrib.staticfiles import finders

ROOT = Path(__file__).resolve().parent.parent


def test_bootstrap_and_plotly_come_from_installed_packages():
    for name in ("bootstrap/css/bootstrap.min.css", "plotly/plotly.min.js"):
        found = finders.find(name)
        assert found, name
        assert "site-packages" in found


def test_no_template_loads_anything_from_another_host():
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        assert "//cdn" not in text and "https://" not in text, template


def test_no_third_party_asset_is_committed():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not [
        name for name in tracked if "bootstrap" in name.lower() and name.endswith((".css", ".js"))
    ]
    assert not [name for name in tracked if "plotly" in name.lower() and name.endswith(".js")]
