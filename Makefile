# Two commands for a fresh machine:  `make run`  and  `make test`.
# Both create the virtual environment .venv/ and install planner into it first.
# `make test` also installs the system packages the tests need when they are missing
# (Debian's chromium, via scripts/system-deps.sh, as root); `make run` needs none.
# `make notebook` installs JupyterLab into .venv/ (the `notebook` extra) and opens notebooks/ in it;
# on a server: make notebook NOTEBOOK_ARGS="--no-browser --ip 0.0.0.0 --port 8888" (as root add --allow-root)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    := outputs/wuhan
WUHAN  := geodata/wuhan
WUHAN_ARGS := --network $(WUHAN)/roads.gpkg --institutions $(WUHAN)/institutions.geojson \
	--population $(WUHAN)/population_age20plus_100m.tif --boundaries $(WUHAN)/districts.gpkg \
	--population-label "persons aged 20+ (WorldPop; ages 0-19 not included)"

.PHONY: run test notebook bench install system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

## run: the default job, 15-minute walk and e-bike coverage of central Wuhan into outputs/wuhan/
run: $(STAMP)
	mkdir -p $(OUT)
	$(BIN)/planner coverage $(WUHAN_ARGS) --mode walk --title "武汉中心城区 15分钟医疗服务圈 (步行 walk)" --out $(OUT)/walk
	$(BIN)/planner coverage $(WUHAN_ARGS) --mode ebike --title "武汉中心城区 15分钟医疗服务圈 (电动自行车 e-bike)" --out $(OUT)/ebike

## system-deps: system packages for the tests (Debian chromium), installed only when missing
system-deps:
	bash scripts/system-deps.sh

## test: the offline test suite; the browser tests must run (PLANNER_REQUIRE_BROWSER=1), never skip
test: $(STAMP) system-deps
	PLANNER_REQUIRE_BROWSER=1 $(BIN)/python -m pytest

## notebook: JupyterLab (the `notebook` extra) on notebooks/; NOTEBOOK_ARGS go to `jupyter lab` (--no-browser, --ip, --port)
notebook: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[notebook]"
	$(BIN)/jupyter lab notebooks/ $(NOTEBOOK_ARGS)

## bench: side-by-side benchmarks against OSMnx, networkx, pandana, pyrosm and spopt -> benchmarks/results/
## (one section only: make bench BENCH_ARGS="--only city"; the tiled OSM files go to benchmarks/data/)
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) outputs/wuhan
