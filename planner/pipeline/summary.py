"""The summaries of the runs, key by key: what ``summary.json`` holds.

Each run's ``summary`` is a plain dict (ready for JSON) described here by a
:class:`typing.TypedDict`: :class:`CoverageSummary` (``planner coverage``,
batch cases), :class:`ScenarioSummary` (a coverage summary plus the
``scenario`` it ran), :class:`SitingSummary` (``planner site``) and
:class:`GridSummary` (``planner grid``). Nested rows have their own types.
Keys that only some runs have are in a ``total=False`` part (Python 3.10
has no ``typing.NotRequired``). :func:`planner.exports.write_summary` is the
one writer of ``summary.json``; ``tests/test_summary_schema.py`` checks real
runs against these types, so a key added to a summary must be added here.

Units: populations in persons of the case's ``population_unit``, shares in
per cent (0-100, to 0.01), times in minutes or seconds as the key says,
distances in metres, areas in km², speeds in km/h.

>>> from planner.pipeline import summary
>>> sorted(summary.ThresholdRow.__required_keys__)
['coverage_pct', 'minutes', 'population_covered']
"""

from __future__ import annotations

from typing import TypedDict

__all__ = [
    "CapacityBasis",
    "CapacityBlock",
    "CapacityDistrictRow",
    "CapacityTierRow",
    "ClosedRoads",
    "CompetitorFigures",
    "CoverageByTier",
    "CoverageCells",
    "CoverageInputs",
    "CoverageInstitutions",
    "CoverageSummary",
    "CreditRow",
    "DistrictCoverage",
    "EditAddInstitution",
    "EditChangeTier",
    "EditCloseRoads",
    "ExcludedLead",
    "ExclusionRow",
    "GridAccessibility",
    "GridComparison",
    "GridDistrictRow",
    "GridInputs",
    "GridSummary",
    "GridWork",
    "LeadRow",
    "MarginalCurveRow",
    "NormsBlock",
    "NormsRow",
    "NetworkStats",
    "ReferralDistrictRow",
    "ReferralInputs",
    "ReferralLeadRow",
    "ReferralPopulation",
    "ReferralPopulationDistrict",
    "ReferralSummary",
    "ScenarioEdits",
    "ScenarioInfo",
    "ScenarioSummary",
    "SiteRow",
    "SitingCounts",
    "SitingInputs",
    "SitingSummary",
    "StudyArea",
    "SuitabilityFigures",
    "Summary",
    "ThresholdRow",
    "TierCounts",
    "TierCoverage",
    "UnsnappedInstitution",
]


# ---------------------------------------------------------------------------------------------------- shared parts


class NetworkStats(TypedDict):
    """The road network of a run (:func:`planner.network.network_stats`)."""

    mode: str | None  # walk, ebike or drive (None for a hand-made graph without one)
    nodes: int  # junctions kept (largest component)
    edges: int  # directed edges kept
    edge_length_km: float  # km, every directed edge counted (two-way roads twice)
    dropped_nodes: int  # nodes outside the kept largest component
    dropped_edges: int  # directed edges outside the kept largest component
    crs: str  # the metric CRS the run computed in (e.g. "EPSG:32650")


class CoverageInputs(TypedDict):
    """The input files and datums of a case, as given."""

    network: str | None  # path of the road network
    institutions: str | None  # path of the institutions
    population: str | None  # path of the population
    boundaries: str | None  # path of the district polygons, None without
    coords: str | None  # datum of the institutions' coordinates: wgs84, gcj02 or bd09
    population_coords: str | None  # datum of the population's coordinates


class CreditRow(TypedDict):
    """The credit of one source of a run's data (:func:`planner.credits.case_credits`)."""

    inputs: list[str]  # input roles using it: network, institutions, population, boundaries, candidates, leads, ...
    text: str  # the credit to display (or that the source was not given, and how to give it)
    licence: str | None  # its licence, e.g. "ODbL 1.0" (None: not known or given with the text)
    url: str | None  # where the licence or source is stated (None: not known)


# ---------------------------------------------------------------------------------------------------- coverage


class ThresholdRow(TypedDict):
    """Coverage within one threshold."""

    minutes: float  # threshold, minutes
    population_covered: float  # persons within it
    coverage_pct: float  # % of the population within it


class TierCoverage(TypedDict):
    """Coverage by the institutions of one tier, within the largest threshold."""

    label_zh: str  # Chinese name of the tier
    institutions: int  # institutions of this tier
    population_covered: float  # persons within the threshold of an institution of this tier
    coverage_pct: float  # % of the population
    population_nearest_covered: float  # persons whose nearest institution is of this tier and within the threshold


class CoverageByTier(TypedDict):
    """One :class:`TierCoverage` per tier of ``settings.TIERS``."""

    tertiary: TierCoverage  # 三级
    secondary: TierCoverage  # 二级
    primary: TierCoverage  # 一级 / 社区卫生服务中心 / 乡镇卫生院
    station: TierCoverage  # 社区卫生服务站 / 村卫生室


class _DistrictCoverageBase(TypedDict):
    district: str  # district name, "(outside districts)" for cells outside every district
    population: float  # persons of the district within the study area
    population_covered: float  # persons within the largest threshold
    coverage_pct: float  # % of the district's population within the study area
    gap_population: float  # persons beyond the largest threshold
    mean_travel_time_min: float | None  # population-weighted mean time to the nearest institution, minutes
    institutions: int | None  # institutions in the district (None when they have no district)


class DistrictCoverage(_DistrictCoverageBase, total=False):
    """Coverage of one district; the last two keys when the district's whole population is known."""

    district_population_total: float  # persons of the whole district, also outside the study area
    share_in_study_area_pct: float  # % of the whole district's population inside the study area


class CoverageCells(TypedDict):
    """Demand cells by status."""

    total: int  # cells
    reached: int  # cells with a route to an institution
    unreachable: int  # cells off the network or without a route (unsnapped + no_route)
    unsnapped: int  # cells farther than max_snap_m from a road
    no_route: int  # cells on the network without a route to any institution
    population_unreachable: float  # persons in unreachable cells
    gap_cells: int  # cells beyond the largest threshold (unreachable ones included)
    gap_population: float  # persons in them


class UnsnappedInstitution(TypedDict):
    """An institution not on the network."""

    facility_id: str  # its id
    name: str  # its name
    nearest_road_m: float  # metres to the nearest road
    status: str  # "unsnapped" (inside the study area) or "outside_study_area"


class TierCounts(TypedDict):
    """A count per tier of ``settings.TIERS``."""

    tertiary: int
    secondary: int
    primary: int
    station: int


class CoverageInstitutions(TypedDict):
    """The institutions of a coverage run."""

    total: int  # institutions read
    snapped: int  # on the network (within max_snap_m of a road)
    unsnapped: int  # not on the network
    unsnapped_list: list[UnsnappedInstitution]  # each of them
    by_tier: TierCounts  # institutions per tier
    tier_source: dict[str, int]  # institutions per way their tier was found (e.g. name_rule, column)
    outside_study_area: int  # unsnapped and outside the study area
    unsnapped_inside_study_area: int  # unsnapped although inside the study area (check their coordinates)


class StudyArea(TypedDict):
    """The area a coverage run speaks for."""

    definition: str  # how it was drawn, in words
    area_km2: float  # km²
    population_input_total: float  # persons in the population input
    population_outside_study_area: float  # persons of the input outside the study area (not counted)


class _CapacityBasisBase(TypedDict):
    column: str | None  # the institutions' capacity column (None: per-tier capacities only)
    persons_per_unit: float | None  # persons one unit of it serves (None: the column is in persons)
    unit: str  # "persons", or the units times persons_per_unit, and the per-tier capacities where used


class CapacityBasis(_CapacityBasisBase, total=False):
    """Where the capacities came from; ``tier_defaults`` when the norms file gives per-tier capacities."""

    tier_defaults: dict[str, float]  # persons per institution of each tier ([capacity_defaults] of the norms file)


class CapacityTierRow(TypedDict):
    """Capacity and use of the institutions of one tier."""

    tier: str  # tertiary, secondary, primary or station
    institutions: int  # institutions of this tier
    capacity: float  # persons they can serve
    demand_within_t: float  # persons within the threshold of each, counted again for every institution they reach
    population_served: float  # persons they serve
    utilisation_pct: float | None  # % of their capacity used (None for no capacity)


class CapacityDistrictRow(TypedDict):
    """Served and unserved persons of one district (served + unserved = total)."""

    district: str  # district name, "(outside districts)" for cells outside every district
    population_total: float  # persons of the district within the study area
    population_served: float  # persons served within the threshold
    population_unserved: float  # unserved_out_of_reach + unserved_over_capacity
    unserved_out_of_reach: float  # persons with no institution within the threshold
    unserved_over_capacity: float  # persons within reach of institutions that are all full
    served_pct: float | None  # % served (None for no population)


class CapacityBlock(TypedDict):
    """Capacity-limited coverage at the largest threshold (:mod:`planner.capacity`), with capacities from a column or per tier.

    Persons are rounded to 0.1 so that they still add up: served + unserved = total and unserved =
    out of reach + over capacity, overall and per district (``balance`` says so in words).
    """

    method: str  # optimal (the most served) or ordered (AccessMod's greedy order)
    max_minutes: float  # the threshold, minutes
    status: str  # optimal (LP), complete (ordered allocation), or time_limit / work_limit when a limit stopped the LP
    capacity_basis: CapacityBasis  # where the capacities came from
    population_total: float  # persons in the study area
    population_served: float  # persons served within the threshold
    population_unserved: float  # unserved_out_of_reach + unserved_over_capacity
    unserved_out_of_reach: float  # persons with no institution within the threshold (coverage's gap)
    unserved_over_capacity: float  # persons within reach, but every institution they reach is full
    served_pct: float | None  # % of the population served
    capacity_total: float  # persons all institutions can serve
    institutions_full: int  # institutions serving their whole capacity
    balance: str  # the identities the figures satisfy, in words
    by_tier: list[CapacityTierRow]  # one row per tier present
    by_district: list[CapacityDistrictRow]  # one row per district ([] without boundaries)


class NormsRow(TypedDict):
    """One district checked against one norm (a row of ``norms.csv``)."""

    district: str  # district name
    norm: str  # the norm's id in the norms file
    kind: str  # residents_per_centre, coverage, beds, doctors or nurses
    measured: float | None  # residents per centre, % or per 1,000/10,000 residents (None: no centre or not checked)
    comparison: str  # "≤" or "≥"
    norm_value: float  # the norm's bound
    unit: str  # its unit
    passed: bool | None  # None: not checked (no figures)
    shortfall: int | None  # centres, residents or beds/doctors/nurses missing (0 when it passes)
    shortfall_unit: str  # unit of the shortfall
    gap_zh: str  # the gap in words, Chinese
    gap_en: str  # the gap in words, English
    standing: str  # how far the norm's figure is verified (verified, secondary, local, example, user)


class NormsBlock(TypedDict):
    """Norms checked per district (:mod:`planner.norms`); only with boundaries and norms on."""

    file: str | None  # the norms file read
    name: str | None  # its name
    checked: list[str]  # ids of the enabled norms
    population_basis: str  # "study area": residents are those of the run's cells
    districts: int  # districts checked
    passed: int  # rows that pass
    failed: int  # rows that fail
    not_checked: int  # rows without figures
    rows: list[NormsRow]  # one row per district and norm, norms in file order


class _CoverageSummaryBase(TypedDict):
    planner_version: str  # version of planner that computed it
    complete: bool  # True: the run finished
    population_unit: str  # what the population counts (e.g. "persons aged 20+ (WorldPop)")
    population_total: float  # persons in the study area
    population_covered: float  # persons within the largest threshold
    coverage_pct: float  # % of the population within the largest threshold
    max_minutes: float  # the largest threshold, minutes
    thresholds: list[ThresholdRow]  # one row per threshold, ascending
    by_tier: CoverageByTier  # coverage per tier
    by_district: list[DistrictCoverage]  # one row per district, by name ([] without boundaries)
    cells: CoverageCells  # demand cells by status
    institutions: CoverageInstitutions  # institutions by status and tier
    mode: str  # walk, ebike or drive
    speeds_kph: dict[str, float]  # km/h per road class ("all_roads" for one speed, "untagged" for the default)
    access_speed_kph: float  # km/h of the straight-line legs between a point and its road
    max_snap_m: float  # metres: the farthest a point may lie from a road
    study_area: StudyArea  # the area the run speaks for
    network: NetworkStats  # the road network
    inputs: CoverageInputs  # the input files
    credits: list[CreditRow]  # the data's sources and licences, one row per source
    runtime_s: float  # seconds, loading included


class CoverageSummary(_CoverageSummaryBase, total=False):
    """``summary.json`` of a coverage run (:func:`planner.pipeline.run_coverage`, :func:`~planner.pipeline.run_case`).

    ``capacity`` only with a capacity column; ``norms`` only with boundaries (and norms on).
    """

    capacity: CapacityBlock  # capacity-limited coverage: served + unserved = total
    norms: NormsBlock  # norms per district


# ---------------------------------------------------------------------------------------------------- scenarios


class EditAddInstitution(TypedDict):
    """An ``[[edits.add_institutions]]`` entry (:class:`planner.scenarios.AddInstitution`)."""

    name: str
    lon: float  # degrees in the datum `coords`
    lat: float  # degrees in the datum `coords`
    tier: str | None  # tier, or None to classify it by its name
    capacity: float | None  # persons (or beds), None when unknown
    coords: str  # datum of lon/lat: wgs84, gcj02 or bd09
    id: str | None  # its facility_id, None for a generated one


class EditChangeTier(TypedDict):
    """An ``[[edits.change_tier]]`` entry (:class:`planner.scenarios.ChangeTier`)."""

    id: str  # facility_id of the institution
    tier: str  # its new tier


class EditCloseRoads(TypedDict):
    """An ``[[edits.close_roads]]`` entry (:class:`planner.scenarios.CloseRoads`)."""

    ids: list[str | int]  # road ids (road_id or OSM way id) to close
    polygon: list[list[float]]  # [lon, lat] vertices (WGS-84 degrees): close every road crossing it


class ScenarioEdits(TypedDict):
    """The what-if edits of a scenario (:class:`planner.scenarios.Edits`)."""

    add_institutions: list[EditAddInstitution]
    remove_institutions: list[str]  # facility_ids removed
    change_tier: list[EditChangeTier]
    close_roads: list[EditCloseRoads]


class ClosedRoads(TypedDict):
    """What the road closures removed."""

    closed_edges: int  # directed edges removed
    closed_road_ids: list[str]  # road ids closed by id


class ScenarioInfo(TypedDict):
    """The scenario a run computed."""

    name: str  # scenario name (also its output folder)
    title: str | None  # its title
    source: str | None  # path of its TOML file, None when built in code
    edits: ScenarioEdits  # its edits
    closed: ClosedRoads  # what the road closures removed


class ScenarioSummary(CoverageSummary):
    """``summary.json`` of a scenario run (:func:`planner.scenarios.run_scenario`): a coverage summary plus ``scenario``."""

    scenario: ScenarioInfo  # the scenario and its edits


# ---------------------------------------------------------------------------------------------------- siting


class SiteRow(TypedDict):
    """A proposed site, in rank order."""

    rank: int  # 1 = added first
    facility_id: str  # candidate id
    name: str  # candidate name
    lon: float  # WGS-84 degrees, 6 decimals
    lat: float  # WGS-84 degrees, 6 decimals
    added_population: float  # persons newly covered when added in rank order (mean-time: see the model)
    cumulative_pct: float  # % of the population covered after it
    adds_population: bool  # False only for a site kept by require_k that adds nobody


class MarginalCurveRow(TypedDict):
    """Coverage with the best K new sites, for K = 1, 2, ..."""

    n_sites: int  # K
    covered_population: float  # persons covered with K new sites
    covered_pct: float  # % of the population
    added_population: float  # persons added by the K-th site
    adds_population: bool  # False when the K-th site adds nobody (require_k)
    status: str  # solver status of that solve


class SitingCounts(TypedDict):
    """Sizes of a siting model."""

    cells: int  # demand cells
    existing_sites: int  # existing institutions providing the service (kept open)
    candidates: int  # candidate sites on the network, after the filters
    candidates_unsnapped: int  # candidates left out: not on the network
    od_pairs: int  # cell-site pairs within the threshold


class SitingInputs(CoverageInputs):
    """The input files of a siting run."""

    candidates: str  # "nodes", "institutions:<tier>" or the path of the candidates file
    candidates_coords: str  # datum of the candidates file


class ExclusionRow(TypedDict):
    """Candidates one exclusion-zone source removed (``--exclude``)."""

    source: str  # the polygon file, or osm:<kind> (e.g. osm:water)
    candidates_removed: int  # candidates inside it (boundary included); one inside two sources counts for both


class SuitabilityFigures(TypedDict):
    """The suitability weights of the candidates (``--suitability``)."""

    source: str  # the raster or polygon file
    column: str | None  # weight column of polygons (None: 'weight', or a raster)
    candidates_removed: int  # candidates of weight 0, left out
    candidates_default_weight: int  # candidates outside the raster/polygons or on nodata: weight 1
    weight_min: float  # smallest weight of the candidates offered
    weight_max: float  # largest weight of the candidates offered


class CompetitorFigures(TypedDict):
    """Competitor sites (``--competitors``): they serve demand within the threshold but are not ours."""

    source: str  # the competitors file
    sites: int  # competitor sites read
    sites_unsnapped: int  # of them, not on the network (they serve nobody)
    cells: int  # cells within the threshold of a competitor and of no existing site
    excluded_from_figures: bool  # True: those cells are left out of population_total and every coverage figure


class _SitingSummaryBase(TypedDict):
    """The keys of every siting summary."""

    planner_version: str  # version of planner that computed it
    complete: bool  # True: the run finished
    population_unit: str  # what the population counts
    model: str  # MCLP, LSCP, PMedian or CapacitatedMCLP
    objective: str  # coverage or mean-time
    solver_status: str  # optimal, time_limit, work_limit or heuristic
    objective_value: float  # persons covered (MCLP), sites (LSCP) or person × seconds (PMedian)
    mip_gap: float  # relative gap of the solve (0 when proven optimal, inf without a bound)
    build_s: float  # seconds building the model
    solve_s: float  # seconds in the solver
    max_minutes: float  # service threshold, minutes
    mode: str  # walk, ebike or drive
    service_tiers: list[str]  # tiers of the existing institutions that provide the service
    new_sites_requested: int | None  # K asked for (None for a target share)
    target_pct: float | None  # % to cover with the fewest sites (None for K sites)
    new_sites: int  # sites proposed
    new_sites_adding_population: int  # of them, sites that add population
    require_k: bool  # exactly K sites asked for, even those adding nobody
    zero_gain_reason: str | None  # why sites were left out or add nobody, None when all add population
    population_total: float  # persons in the demand cells
    population_covered_before: float  # persons covered by the existing sites
    population_covered_after: float  # persons covered with the new sites too
    coverage_pct_before: float  # % before
    coverage_pct_after: float  # % after
    population_unreachable_by_any_site: float  # persons no existing or candidate site reaches
    sites: list[SiteRow]  # the proposed sites, in rank order
    marginal_curve: list[MarginalCurveRow]  # coverage for 1..K sites ([] when not computed)
    counts: SitingCounts  # model sizes
    cell_size_m: float | None  # demand cell size, metres (None: the population's own points or cells)
    inputs: SitingInputs  # the input files
    credits: list[CreditRow]  # the data's sources and licences, one row per source
    runtime_s: float  # seconds, loading included


class SitingSummary(_SitingSummaryBase, total=False):
    """``summary.json`` of a siting run (:func:`planner.pipeline.run_siting`, :func:`~planner.pipeline.site_case`).

    The keys below the base ones are there only when their option was given.
    """

    candidates_excluded: list[ExclusionRow]  # --exclude: candidates each source removed
    suitability: SuitabilityFigures  # --suitability
    competitors: CompetitorFigures  # --competitors
    population_served_by_competitors: float  # persons within the threshold of a competitor and of no existing site


# ---------------------------------------------------------------------------------------------------- grids


class GridWork(TypedDict, total=False):
    """Work done by the grid solver and its bounds (empty when no search ran)."""

    mip_nodes: int  # branch-and-bound nodes
    mip_max_nodes: int  # their bound
    lns_submips: int  # sub-problems of the improvement search
    lns_max_submips: int  # their bound


class GridComparison(TypedDict):
    """The balanced grids against the nearest-lead baseline."""

    population_total: float  # persons in the assigned cells
    population_moved: float  # persons assigned to another lead than their nearest
    population_moved_pct: float  # % of them
    cells_moved: int  # cells assigned to another lead than their nearest
    mean_travel_time_s: float  # population-weighted mean time to the assigned lead, seconds
    baseline_mean_travel_time_s: float  # the same to the nearest lead, seconds
    mean_travel_time_added_s: float  # the difference, seconds
    min_load_ratio: float  # smallest population / target of a grid
    max_load_ratio: float  # largest population / target of a grid
    baseline_min_load_ratio: float  # the same for the nearest-lead zones
    baseline_max_load_ratio: float
    baseline_leads_within_tolerance: int  # nearest-lead zones whose load is within the tolerance


class LeadRow(TypedDict):
    """One grid: its lead hospital, load, travel times and members."""

    facility_id: str  # lead id ("lead:<id>" for a leads file)
    name: str  # lead name
    institution_id: str | None  # the same hospital in the institutions, None if absent
    population: float  # persons assigned
    capacity_share: float  # share of the total capacity (0-1)
    target_population: float  # persons: capacity share × population
    load_ratio: float  # population / target
    within_tolerance: bool  # load within the tolerance band
    baseline_population: float  # persons nearest to this lead
    baseline_load_ratio: float  # baseline population / target
    mean_travel_time_min: float  # population-weighted mean time to the lead, minutes
    p95_travel_time_min: float  # 95th percentile (population-weighted), minutes
    max_travel_time_min: float  # longest, minutes
    n_cells: int  # cells assigned
    members: int  # member institutions in the grid
    members_tertiary: int  # of them, per tier
    members_secondary: int
    members_primary: int
    members_station: int
    member_names: list[str]  # their names


class ExcludedLead(TypedDict):
    """A lead left out of the model."""

    facility_id: str  # lead id
    name: str  # lead name
    reason: str  # why (outside the study area, off the network, duplicate)


class GridAccessibility(TypedDict):
    """The E2SFCA accessibility index of the cells."""

    method: str  # "E2SFCA (Gaussian decay)"
    max_minutes: float  # catchment, minutes
    basis: str  # what is counted per 1,000 residents
    mean_per_1000: float  # population-weighted mean index


class _GridDistrictRowBase(TypedDict):
    district: str  # district name, "(outside districts)" for cells outside every district
    population: float  # persons
    population_assigned: float  # persons assigned to a lead
    n_grids: int  # leads serving the district
    main_lead: str | None  # id of the lead serving most of its residents
    main_lead_name: str | None  # its name
    mean_travel_time_min: float | None  # population-weighted mean time to the assigned lead, minutes
    p95_travel_time_min: float | None  # 95th percentile, minutes
    max_travel_time_min: float | None  # longest, minutes


class GridDistrictRow(_GridDistrictRowBase, total=False):
    """Resource balance of one district; the institution keys when the institutions have districts."""

    institutions: int  # institutions in the district
    institutions_tertiary: int  # of them, per tier
    institutions_secondary: int
    institutions_primary: int
    institutions_station: int
    capacity: float | None  # total capacity where known
    capacity_missing: int  # institutions without a capacity
    capacity_per_1000: float | None  # capacity per 1,000 residents


class GridInputs(CoverageInputs):
    """The input files of a grid run."""

    leads: str | None  # path of the leads file, None for the institutions of the lead tiers
    fixed: str | None  # path of the fixed-assignments table, None without (or given in code)


class _GridSummaryBase(TypedDict):
    planner_version: str  # version of planner that computed it
    complete: bool  # True: the run finished
    population_unit: str  # what the population counts
    mode: str  # walk, ebike or drive
    contiguity: str  # queen or rook
    tolerance: float  # relative band of each load around its target
    capacity_basis: str  # "equal shares" or the capacity column
    lead_source: str  # where the leads came from (tiers of the institutions, or the leads file)
    solver_status: str  # optimal, work_limit, time_limit or heuristic
    method: str  # mip or heuristic
    gap: float  # relative gap (objective - bound) / objective
    time_limited: bool  # True when the safety-net time limit cut a step short (grids may differ between runs)
    work: GridWork  # work done and its bounds
    objective_person_s: float  # population-weighted travel time, person × seconds
    lower_bound_person_s: float  # a lower bound on it, person × seconds
    solve_s: float  # seconds in the assignment
    n_grids: int  # grids (leads in the model)
    population_total: float  # persons in the cells
    population_assigned: float  # persons assigned to a lead
    population_unassigned: float  # persons without a route to any lead
    cells: int  # demand cells
    cells_unassigned: int  # cells without a route to any lead
    cell_size_m: float  # demand cell size, metres
    load_ratio_range: list[float]  # [smallest, largest] population / target of a grid
    baseline_load_ratio_range: list[float]  # the same for the nearest-lead zones
    comparison: GridComparison  # against the nearest-lead baseline
    leads: list[LeadRow]  # one row per grid
    leads_excluded: list[ExcludedLead]  # leads left out
    members_unattached: int  # member institutions in no grid
    institutions_outside_study_area: int  # institutions outside the study area (members of no grid)
    fixed_assignments: int  # planner-fixed assignments honoured
    accessibility: GridAccessibility  # the E2SFCA index
    by_district: list[GridDistrictRow]  # one row per district ([] without boundaries)
    inputs: GridInputs  # the input files
    credits: list[CreditRow]  # the data's sources and licences, one row per source
    runtime_s: float  # seconds, loading included


class GridSummary(_GridSummaryBase, total=False):
    """``summary.json`` of a grid run (:func:`planner.pipeline.run_grids`, :func:`~planner.pipeline.grid_case`).

    ``norms`` only with boundaries (and norms on); coverage norms use the time to the nearest institution.
    """

    norms: NormsBlock  # norms per district


# ---------------------------------------------------------------------------------------------------- referral


class ReferralDistrictRow(TypedDict):
    """Referral within the threshold, for the from-institutions of one district."""

    district: str  # district name, "(none)" for institutions outside every district
    n_from: int  # from-institutions in the district
    n_within: int  # of them, referring within the threshold
    within_pct: float | None  # % of them


class ReferralLeadRow(TypedDict):
    """Referral within the threshold, for the from-institutions of one lead hospital."""

    lead_id: str  # lead id ("lead:<row>" for a leads file)
    lead_name: str | None  # lead name
    n_from: int  # from-institutions whose own lead it is
    n_within: int  # of them, reaching the nearest to-tier institution within the threshold
    within_pct: float | None  # % of them
    n_lead_within: int  # of them, reaching this lead within the threshold
    lead_within_pct: float | None  # % of them


class ReferralPopulation(TypedDict):
    """Residents whose nearest from-tier institution (by travel time from their cell) refers within the threshold."""

    total: float  # persons in the cells
    within: float  # persons whose nearest from-institution refers within the threshold
    within_pct: float | None  # % of them
    no_from_institution: float  # persons reaching no from-institution at all (counted as not within)


class ReferralPopulationDistrict(TypedDict):
    """The population-weighted share for one district."""

    district: str  # district name, "(none)" for cells outside every district
    total: float  # persons
    within: float  # persons whose nearest from-institution refers within the threshold
    within_pct: float | None  # % of them


class ReferralInputs(CoverageInputs):
    """The input files of a referral run."""

    leads: str | None  # path of the leads file, None without
    grid: str | None  # path of the `planner grid` folder, None without


class _ReferralSummaryBase(TypedDict):
    planner_version: str  # version of planner that computed it
    complete: bool  # True: the run finished
    population_unit: str  # what the population counts
    mode: str  # walk, ebike or drive
    max_minutes: float  # referral threshold, minutes
    from_tiers: list[str]  # tiers that refer
    to_tiers: list[str]  # tiers that receive
    n_from: int  # from-institutions (all of them: off the network and outside the study area too)
    n_within: int  # of them, reaching a to-tier institution within the threshold
    within_pct: float | None  # % of all from-institutions (unsnapped and unreachable ones count as not within)
    n_unsnapped: int  # from-institutions farther than max_snap_m from a road
    n_unreachable: int  # from-institutions on the network with no route to any to-tier institution
    within_pct_snapped: float | None  # % of the from-institutions on the network
    median_travel_time_min: float | None  # median time of the routed trips, minutes
    max_travel_time_min: float | None  # longest routed trip, minutes
    population: ReferralPopulation  # the population-weighted share
    n_outside_study_area: int  # from-institutions outside the study area (reported, never dropped)
    lead_source: str | None  # the leads file or grid folder, None without
    lead_rule: str | None  # how each institution's own lead is chosen, None without leads
    n_leads: int  # lead hospitals (0 without)
    max_snap_m: float  # largest distance from a point to a road, metres
    inputs: ReferralInputs  # the input files
    credits: list[CreditRow]  # the data's sources and licences, one row per source
    runtime_s: float  # seconds, loading included


class ReferralSummary(_ReferralSummaryBase, total=False):
    """``summary.json`` of a referral run (:func:`planner.pipeline.run_referral`, :func:`~planner.pipeline.referral_case`).

    The per-district keys need district boundaries; the lead keys need leads or a grid run.
    """

    by_district: list[ReferralDistrictRow]  # one row per district of the from-institutions
    population_by_district: list[ReferralPopulationDistrict]  # one row per district of the cells
    lead_within_pct: float | None  # % of the from-institutions with a lead that reach it within the threshold
    by_lead: list[ReferralLeadRow]  # one row per lead hospital


# any run's summary (a ScenarioSummary is a CoverageSummary)
Summary = CoverageSummary | SitingSummary | GridSummary | ReferralSummary
