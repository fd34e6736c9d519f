"""Screenshots of the coverage, site and grid maps opened with no network, for the docs.

Each ``map.html`` is opened from ``file://`` in headless Chromium (Debian's ``chromium``, driven by
Playwright as ``tests/test_browser.py`` does; ``playwright install`` is never needed) with every
request aborted, basemap tiles included, as on a PC without internet. The script waits until the
map shows its "tiles need a network" note, then writes ``<out>/{coverage,site,grid}.png``
(``docs/screenshots/`` by default). Chinese text is drawn with the Noto Sans CJK SC font that the
``mplfonts`` package ships (through a private fontconfig file), so no system font is needed.

It does not rerun the analyses: give the output folders of the runs (each holding ``map.html``)::

    .venv/bin/planner coverage <make run's WUHAN_ARGS> --mode walk --out /tmp/shots/walk
    .venv/bin/planner site <README's site example> --new-sites 10 --minutes 15 --out /tmp/shots/sites
    .venv/bin/planner grid <README's grid example> --out /tmp/shots/grids
    .venv/bin/python scripts/screenshots.py --coverage /tmp/shots/walk --site /tmp/shots/sites --grid /tmp/shots/grids

or let it run those three commands, with the CLI's defaults, into a folder first: ``--run /tmp/shots``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIEWPORT = {"width": 1280, "height": 860}
KINDS = ("coverage", "site", "grid")
WUHAN = ROOT / "geodata" / "wuhan"
INPUTS = ["--network", str(WUHAN / "roads.gpkg"), "--institutions", str(WUHAN / "institutions.geojson"),
          "--population", str(WUHAN / "population_age20plus_100m.tif"), "--boundaries", str(WUHAN / "districts.gpkg")]
COMMANDS = {  # the runs the screenshots show, with the CLI's defaults (offline, basemap auto)
    "coverage": ["coverage", *INPUTS, "--population-label", "persons aged 20+ (WorldPop; ages 0-19 not included)",
                 "--mode", "walk", "--title", "武汉中心城区 15分钟医疗服务圈 (步行 walk)"],  # make run's walk map
    "site": ["site", *INPUTS, "--new-sites", "10", "--minutes", "15"],  # README's site example
    "grid": ["grid", *INPUTS],  # README's grid example
}


def run_analyses(folder: Path) -> dict[str, Path]:
    """Run the three commands into ``folder/<kind>/`` and return the folders."""
    planner = Path(sys.executable).with_name("planner")
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for kind, args in COMMANDS.items():
        out[kind] = folder / kind
        subprocess.run([str(planner), *args, "--out", str(out[kind]), "--force", "--quiet"], check=True)
    return out


def _fontconfig(tmp: Path) -> Path:
    """Write a fontconfig file adding the folder of mplfonts' Noto Sans CJK SC to the system's fonts."""
    sys.path.insert(0, str(ROOT))
    from planner._fonts import cjk_font_path

    conf = tmp / "fonts.conf"
    conf.write_text(f"""<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig>
  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>
  <dir>{cjk_font_path().parent}</dir>
  <cachedir>{tmp / "cache"}</cachedir>
</fontconfig>
""", encoding="utf-8")
    return conf


def screenshot(browser, html: Path, png: Path) -> dict[str, int]:
    """Open `html` with every request aborted, wait for the tiles note, write `png`; return what the page shows."""
    context = browser.new_context(viewport=VIEWPORT)
    errors: list[str] = []
    requested: list[str] = []

    def route(r):
        if r.request.url.startswith(("file:", "data:", "about:")):
            r.continue_()
        else:
            requested.append(r.request.url)
            r.abort("internetdisconnected")

    context.route("**/*", route)
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(html.as_uri())
        page.wait_for_function("window.plannerMap !== undefined")
        page.locator("#planner-tiles-note").wait_for(state="visible", timeout=15000)
        page.wait_for_timeout(500)
        if errors:
            msg = f"{html}: the page raised {errors}"
            raise RuntimeError(msg)
        png.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(png))
        return {"overlays": page.locator("path.leaflet-interactive").count(),
                "legend": page.locator("#planner-legend").count(), "requests_aborted": len(requested)}
    finally:
        context.close()


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, take the screenshots, print what each shows."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for kind in KINDS:
        ap.add_argument(f"--{kind}", type=Path, help=f"output folder of the {kind} run (holding map.html)")
    ap.add_argument("--run", type=Path, help="run the three analyses with the CLI's defaults into this folder first")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="folder of the PNGs")
    args = ap.parse_args(argv)
    folders = run_analyses(args.run) if args.run else {k: getattr(args, k) for k in KINDS if getattr(args, k)}
    if not folders:
        ap.error("give --coverage/--site/--grid output folders, or --run FOLDER")
    exe = os.environ.get("PLANNER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        ap.error("Chromium is not installed: apt-get install --no-install-recommends chromium")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        env = {**os.environ, "FONTCONFIG_FILE": str(_fontconfig(Path(tmp)))}
        browser = p.chromium.launch(executable_path=exe, env=env,
                                    args=["--no-sandbox", "--disable-gpu", "--host-resolver-rules=MAP * ~NOTFOUND"])
        try:
            for kind, folder in folders.items():
                shown = screenshot(browser, folder / "map.html", args.out / f"{kind}.png")
                print(f"{args.out / f'{kind}.png'}: {shown}")  # noqa: T201 - a script's report
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
