"""Chinese text in ``map.png`` on a machine with no CJK system font and any matplotlib font cache.

The static map takes Noto Sans CJK SC from the pip package ``mplfonts`` and
registers it at run time, so it must not matter which fonts the system has or
what ``~/.cache/matplotlib`` holds. Each check runs in a fresh interpreter whose
fontconfig sees only DejaVu and with its own ``MPLCONFIGDIR``: empty for the
first run (the cache is built from scratch), then holding the font list that
first run wrote (a cache that has never heard of the CJK font). Matplotlib also
scans ``/usr/share/fonts`` itself, behind fontconfig's back; on a machine with a
CJK font there, the child drops it from matplotlib's list before planner runs,
so the check means the same everywhere. (``MPL_IGNORE_SYSTEM_FONTS`` cannot be
used for this: it also hides fonts added at run time.) Warnings are errors, so
a single "Glyph … missing from font(s)" fails the run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from planner import PlannerError, _fonts

TITLE = "宁化县城 15分钟医疗服务圈 (步行 walk)"
DEJAVU_DIR = "/usr/share/fonts/truetype/dejavu"

# Run in a child interpreter: the font list must be built under the test's environment.
SCRIPT = r"""
import json, sys, warnings
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
from matplotlib import font_manager

mode, out, title = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
han = [c for c in title if ord(c) > 0x2E80]


def has_glyphs(path):
    font = font_manager.get_font(path)
    return all(font.get_char_index(ord(c)) for c in han)


# CJK fonts matplotlib found on the system by scanning font folders itself: make it forget them
manager = font_manager.fontManager
cjk_system = sorted({f.fname for f in manager.ttflist if has_glyphs(f.fname)})
manager.ttflist = [f for f in manager.ttflist if f.fname not in cjk_system]

from planner import _fonts

if mode == "map":
    import numpy as np
    import pandas as pd
    from planner import datasets, maps
    from planner.pipeline import run_coverage

    lon, lat = np.meshgrid(np.arange(116.640, 116.670, 0.004), np.arange(26.255, 26.275, 0.004))
    pd.DataFrame({"lon": lon.ravel(), "lat": lat.ravel(), "population": 100}).to_csv(out / "pop.csv", index=False)
    osm = datasets.get_path("ninghua_osm")
    run = run_coverage(osm, osm, out / "pop.csv", mode="walk", minutes=(15,), with_isochrones=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        maps.render_static_map(run, str(out / "map.png"), title=title)
else:
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        family = _fonts.cjk_font_family()
        with plt.rc_context({"font.family": [family, "DejaVu Sans"]}):
            fig, ax = plt.subplots(figsize=(3, 2))
            ax.set_title(title)
            fig.savefig(out / "map.png", dpi=50)
            plt.close(fig)

family = _fonts.cjk_font_family()
path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
print(json.dumps({"cjk_system": cjk_system, "family": family, "path": path, "glyphs": has_glyphs(path),
                  "cache": matplotlib.get_cachedir()}))
"""


def _isolated_env(tmp: Path, mplconfig: Path) -> dict[str, str]:
    fc = tmp / "fonts.conf"
    if not fc.exists():
        fc.write_text('<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">\n'
                      f"<fontconfig>\n  <dir>{DEJAVU_DIR}</dir>\n  <cachedir>{tmp / 'fc-cache'}</cachedir>\n"
                      "</fontconfig>\n", encoding="utf-8")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("MPL", "FONTCONFIG", "PYTHONWARN"))}
    env.update(MPLCONFIGDIR=str(mplconfig), FONTCONFIG_FILE=str(fc), MPLBACKEND="Agg", PYTHONIOENCODING="utf-8")
    return env


def _render(mode: str, tmp: Path, mplconfig: Path) -> dict:
    out = tmp / mode
    out.mkdir()
    proc = subprocess.run([sys.executable, "-c", SCRIPT, mode, str(out), TITLE], env=_isolated_env(tmp, mplconfig),
                          capture_output=True, text=True, encoding="utf-8", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "map.png").stat().st_size > 1000
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_map_png_has_cjk_glyphs_without_system_fonts(tmp_path):
    """The map.png of planner finds every Han glyph of its title in Noto Sans CJK SC, fresh or cached."""
    mplconfig = tmp_path / "mplconfig"
    mplconfig.mkdir()
    expected = str(_fonts.cjk_font_path())
    # 1. fresh, empty MPLCONFIGDIR: planner's own PNG renderer, the Ninghua case
    first = _render("map", tmp_path, mplconfig)
    assert first["cache"] == str(mplconfig)
    assert first["family"] == "Noto Sans CJK SC"
    assert first["path"] == expected and first["glyphs"] is True
    assert any(p.name.startswith("fontlist") for p in mplconfig.iterdir())  # matplotlib wrote its cache
    # 2. the cache from run 1 (it never lists the CJK font): still found, still no missing glyph
    second = _render("figure", tmp_path, mplconfig)
    assert second["path"] == expected and second["glyphs"] is True


def test_font_is_mplfonts_noto_sans_cjk():
    """The font is the full Noto Sans CJK SC that mplfonts ships."""
    path = _fonts.cjk_font_path()
    assert path.name == "NotoSansCJKsc-Regular.otf" and path.parent.parent.name == "mplfonts"
    assert path.stat().st_size > 10_000_000  # the full font, not a stub (16.4 MB in mplfonts 0.0.11)


def test_missing_font_package_is_a_planner_error(tmp_path, monkeypatch):
    """A broken install (an ``mplfonts`` without its fonts/ folder first on sys.path) is a one-line error."""
    (tmp_path / "mplfonts").mkdir()
    (tmp_path / "mplfonts" / "__init__.py").write_text("", encoding="utf-8")
    monkeypatch.delitem(sys.modules, "mplfonts", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PlannerError, match=r"NotoSansCJKsc-Regular\.otf.*pip install"):
        _fonts.cjk_font_path()
