"""The Chinese font of the static maps, taken from a pip package rather than the system.

``map.png`` titles, legends and district labels are Chinese. A machine with no
CJK system font (a fresh Debian, most servers and CI) would draw them as empty
boxes, and installing a font afterwards does not help while matplotlib keeps
its old font list in ``~/.cache/matplotlib``. So the font comes with planner's
own dependencies: Noto Sans CJK SC (SIL Open Font License 1.1), shipped by the
pip package `mplfonts` as ``mplfonts/fonts/NotoSansCJKsc-Regular.otf``. It is
registered with matplotlib's font manager in memory, at run time, the first time
a map needs it; nothing is installed and no matplotlibrc or cache is written, so
it works whatever the font cache holds. mplfonts' own set-up functions (which
rewrite matplotlibrc) are never called, and the package is not even imported.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from ._errors import MissingDependencyError

CJK_FONT_PACKAGE = "mplfonts"
CJK_FONT_FILE = "fonts/NotoSansCJKsc-Regular.otf"  # inside the package; SIL OFL 1.1
_INSTALL = "pip install --force-reinstall mplfonts (conda: pip install mplfonts inside the environment)"


def cjk_font_path() -> Path:
    """Locate the Noto Sans CJK SC file that the `mplfonts` package ships.

    Returns
    -------
    path
        The ``.otf`` file.

    Raises
    ------
    MissingDependencyError
        If `mplfonts` is not installed or its font file is missing.

    Examples
    --------
    >>> cjk_font_path().name
    'NotoSansCJKsc-Regular.otf'
    """
    spec = importlib.util.find_spec(CJK_FONT_PACKAGE)  # locates the package without importing it
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder, CJK_FONT_FILE)
        if path.is_file():
            return path
    where = "is not installed" if spec is None else f"has no {CJK_FONT_FILE}"
    msg = (f"the Chinese map font {Path(CJK_FONT_FILE).name} is missing: package {CJK_FONT_PACKAGE} {where}, "
           f"so map.png would show empty boxes; fix: {_INSTALL}")
    raise MissingDependencyError(msg)


def cjk_font_family() -> str:
    """Register the CJK font with matplotlib (once per process) and return its family name.

    Use the name first in ``font.family`` (with ``"DejaVu Sans"`` after it).

    Returns
    -------
    family
        ``"Noto Sans CJK SC"``.

    Raises
    ------
    MissingDependencyError
        If the font file is missing or matplotlib cannot resolve it.

    Examples
    --------
    >>> cjk_font_family()
    'Noto Sans CJK SC'
    """
    from matplotlib import font_manager

    path = cjk_font_path()
    manager = font_manager.fontManager
    if not any(Path(f.fname) == path for f in manager.ttflist):
        manager.addfont(str(path))
        # recent matplotlib clears its findfont cache in addfont; older releases may keep a stale answer
        cached = getattr(manager, "_findfont_cached", None)
        if hasattr(cached, "cache_clear"):
            cached.cache_clear()
    family = font_manager.get_font(str(path)).family_name
    try:
        found = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
    except ValueError:
        found = ""
    if not found or font_manager.get_font(found).get_char_index(ord("医")) == 0:
        # MPL_IGNORE_SYSTEM_FONTS limits matplotlib's findfont to its own fonts, added ones included
        fix = "unset MPL_IGNORE_SYSTEM_FONTS" if os.environ.get("MPL_IGNORE_SYSTEM_FONTS") else _INSTALL
        msg = (f"matplotlib cannot use the Chinese map font {path} (family {family!r} resolves to {found or 'nothing'}), "
               f"so map.png would show empty boxes; fix: {fix}")
        raise MissingDependencyError(msg)
    return family
