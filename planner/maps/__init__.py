"""Interactive Folium maps: one cartography, Chinese basemaps, offline export.

Every planner map (coverage, siting, grids, scenario differences) is built
from the same blocks, so that they look alike and share the same safeguards:

* :func:`new_map` - an empty map on a basemap (``osm``, ``amap``, ``tianditu``
  or ``none``) with scale bar, full-screen button, data attribution and, with
  ``offline=True``, Leaflet inlined into the page so it opens with no network;
* :func:`add_travel_time_cells`, :func:`add_districts`, :func:`add_isochrones`,
  :func:`add_institutions`, :func:`add_routes` - the overlays, in one style (tier colours, a
  sequential travel-time ramp, gaps in orange, unreachable in grey), with
  tooltips that carry units;
* :func:`add_legend` (bilingual, Chinese and English) and
  :func:`add_layer_control`;
* :func:`render_coverage_map` assembles them for a coverage run.

The package has seven modules, each using only the ones before it; every
public name is re-exported here, so ``from planner import maps`` is all a
caller needs:

* :mod:`planner.maps._trace` (private) - grid cells dissolved per class by
  tracing a label raster rather than uniting their squares;
* :mod:`planner.maps.basemaps` - basemaps, datums, offline Leaflet,
  :func:`new_map` and the page furniture;
* :mod:`planner.maps.colouring` - grid adjacency and colours (no two
  neighbouring grids alike);
* :mod:`planner.maps.layers` - the ``add_*`` overlays and the legend
  (GeoDataFrames in);
* :mod:`planner.maps.symbols` - lead labels, ranked proposed sites, the
  institution counts every map states, and :func:`legend_classes` (every
  symbol drawn has a legend entry);
* :mod:`planner.maps.render` - one map per kind of run (typed runs in),
  :func:`side_by_side_html` and :func:`save_map`;
* :mod:`planner.maps.static` - the matplotlib PNG, :func:`render_static_map`.

None of them imports :mod:`planner.pipeline`, :mod:`planner.scenarios` or
:mod:`planner.exports`: the run types are named for type checking only.

**Datums.** Overlays are given in WGS-84 (EPSG:4326). Amap/Gaode tiles are
drawn in GCJ-02, which is WGS-84 moved by a deliberate non-linear offset of
typically 100-700 m, so on the ``amap`` basemap every overlay - cells,
districts, isochrones, markers and the initial view - is moved to GCJ-02 in
one place, :func:`shift_for_basemap`, which every ``add_*`` function calls.
Tianditu (CGCS2000) and OpenStreetMap agree with WGS-84 to well below a metre
and are not shifted.

**Offline.** With ``offline=True`` the HTML carries Leaflet's JavaScript and
CSS (read at run time from the installed ``django-js-lib-leaflet`` package)
and folium's other CDN assets (jQuery, Bootstrap, Font Awesome) are left out:
the page makes no request except for basemap tiles. On an intranet without
internet use ``basemap="none"``, or a locally served tile mirror via
``tile_url``.

**Escaping.** Every string that comes from a user's file (institution and
district names, titles) goes through :func:`esc` before it reaches the page,
so a name cannot inject markup or script.
"""

from __future__ import annotations

from .basemaps import (
    APPROVAL_NOTICE,
    BASEMAPS,
    INSTITUTION_PANE,
    TIANDITU_KEY_ENV,
    Basemap,
    attribution,
    esc,
    get_basemap,
    new_map,
    shift_for_basemap,
)
from .colouring import GRID_NEIGHBOUR_M, GRID_PALETTE, grid_adjacency, grid_colours
from .layers import (
    BAND_COLOURS,
    DISTRICT_COLOUR,
    GAP_COLOUR,
    ISOCHRONE_COLOUR,
    TIER_COLOURS,
    TIER_RADIUS_PX,
    UNREACHABLE_COLOUR,
    LegendEntry,
    LegendSection,
    add_cell_classes,
    add_districts,
    add_grids,
    add_institutions,
    add_isochrones,
    add_layer_control,
    add_legend,
    add_routes,
    add_travel_time_cells,
    outline_legend,
    route_colour,
    route_legend,
    tier_legend,
    travel_time_legend,
)
from .render import (
    BASELINE_COLOUR,
    CHANGE_CLASSES,
    EMAIL_SIZE_MB,
    MOVED_COLOUR,
    SITING_CLASSES,
    render_compare_map,
    render_coverage_map,
    render_grid_map,
    render_referral_map,
    render_siting_map,
    save_map,
    side_by_side_html,
)
from .static import render_static_map
from .symbols import (
    PROPOSED_COLOUR,
    add_grid_labels,
    add_proposed_sites,
    institution_counts,
    institution_legend,
    label_points,
    legend_classes,
    proposed_legend,
)

__all__ = [
    "APPROVAL_NOTICE",
    "BAND_COLOURS",
    "BASELINE_COLOUR",
    "BASEMAPS",
    "CHANGE_CLASSES",
    "DISTRICT_COLOUR",
    "EMAIL_SIZE_MB",
    "GAP_COLOUR",
    "GRID_NEIGHBOUR_M",
    "GRID_PALETTE",
    "INSTITUTION_PANE",
    "ISOCHRONE_COLOUR",
    "MOVED_COLOUR",
    "PROPOSED_COLOUR",
    "SITING_CLASSES",
    "TIANDITU_KEY_ENV",
    "TIER_COLOURS",
    "TIER_RADIUS_PX",
    "UNREACHABLE_COLOUR",
    "Basemap",
    "LegendEntry",
    "LegendSection",
    "add_cell_classes",
    "add_districts",
    "add_grid_labels",
    "add_grids",
    "add_institutions",
    "add_isochrones",
    "add_layer_control",
    "add_legend",
    "add_proposed_sites",
    "add_routes",
    "add_travel_time_cells",
    "attribution",
    "esc",
    "get_basemap",
    "grid_adjacency",
    "grid_colours",
    "institution_counts",
    "institution_legend",
    "label_points",
    "legend_classes",
    "new_map",
    "outline_legend",
    "proposed_legend",
    "render_compare_map",
    "render_coverage_map",
    "render_grid_map",
    "render_referral_map",
    "render_siting_map",
    "render_static_map",
    "route_colour",
    "route_legend",
    "save_map",
    "shift_for_basemap",
    "side_by_side_html",
    "tier_legend",
    "travel_time_legend",
]
