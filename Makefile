# Two commands set everything up on a fresh machine:
#   make reproduce   venv + the whole workflow on the embedded default (offline, CPU, minutes)
#   make test        venv + the test suite
# make reproduce CONFIG=config/hardneg.yaml runs another config (on top of the default).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
EXTRAS ?= test,tf,slurm,detectron2,bench
STAMP  := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
comma  := ,
CORES  ?= all
CONFIG ?=
PYTEST_ARGS ?=
# make test and test-fast run pytest on TEST_JOBS worker processes (pytest-xdist; one per core
# of a 2-core machine, tests/conftest.py gives each one torch thread); TEST_JOBS=0: one process
TEST_JOBS ?= 2
# A killed `make reproduce` resumes with the same command: --rerun-incomplete re-runs the jobs
# it had started, --nolock needs no --unlock after a kill (each pretraining run folder has
# its own lock, repro.io.run_lock, so two workflows never train one run at once)
REPRODUCE_FLAGS = --cores $(CORES) --show-failed-logs --rerun-incomplete --nolock

.PHONY: install reproduce test test-fast test-slurm lint report-html dry-run-paper clean-results \
	mutation mutation-report

# detectron2 0.6's Python package, from the index's sdist, uncompiled (its dependencies are the
# `detectron2` extra); GPU users may build it from source instead (README, "Detection backends")
D2STAMP := $(VENV)/.installed-detectron2-0.6

install: $(STAMP) $(if $(findstring detectron2,$(EXTRAS)),$(D2STAMP))

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[$(EXTRAS)]'
	@touch $@

$(D2STAMP): $(STAMP) transfer/detection/install_detectron2.py
	$(PY) -m transfer.detection.install_detectron2
	@touch $@

reproduce: install
	@if [ -n "$(CONFIG)" ] && [ ! -f "$(CONFIG)" ]; then \
		echo "make reproduce: no config file at $(CONFIG) (the configs: $$(ls config/*.yaml | grep -v schema | tr '\n' ' '))" >&2; \
		exit 2; fi; \
	start=$$(date +%s); \
	$(VENV)/bin/snakemake $(REPRODUCE_FLAGS) \
		$(if $(CONFIG),--configfile "$(CONFIG)"); status=$$?; \
	echo "make reproduce: the workflow took $$(( $$(date +%s) - start )) s (exit $$status)"; \
	if [ $$status -eq 0 ]; then echo "make reproduce: every table and figure on one page:" \
		"make report-html$(if $(CONFIG), CONFIG=$(CONFIG))"; fi; \
	exit $$status

test: install
	$(PY) -m pytest -n $(TEST_JOBS) --dist loadgroup $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -m 'not slow' -n $(TEST_JOBS) --dist loadgroup $(PYTEST_ARGS)

# the SLURM profile against a one-node SLURM cluster started on this machine (as root, apt
# installs slurmctld, slurmd and munge where missing); also part of `make test`
test-slurm: install
	$(PY) -m pytest -m slurm $(PYTEST_ARGS)

lint: install  # Snakemake's linter (also a test of `make test`: tests/test_envs.py)
	$(VENV)/bin/snakemake --lint

report-html: install  # Snakemake's report of the last `make reproduce` (same CONFIG=)
	$(VENV)/bin/snakemake --report report.html $(if $(CONFIG),--configfile "$(CONFIG)")

# Mutation testing of the core with mutmut ([tool.mutmut] in pyproject.toml; README "Mutation
# testing"): MODULES= chooses dotted modules or packages, MUTATION_JOBS= the parallel workers.
# Results accumulate in mutants/ (ignored by git); `make mutation-report` prints them again.
MODULES ?= repro.samplers repro.estimators repro.memory repro.models repro.report.stats \
	repro.results repro.false_negatives repro.negatives repro.report.claims \
	repro.report.option_ablation repro.report.tables repro.steplog repro.precision \
	repro.data.batch_augment transfer.fewshot.episodes transfer.detection.convert
MUTATION_JOBS ?= 1
$(VENV)/bin/mutmut: | install
	$(PY) -m pip install --disable-pip-version-check -q -e '.[$(EXTRAS),mutation]'

mutation: install $(VENV)/bin/mutmut
	@start=$$(date +%s); \
	OMP_NUM_THREADS=1 $(VENV)/bin/mutmut run --max-children $(MUTATION_JOBS) \
		$(foreach m,$(MODULES),'$(m).*'); status=$$?; \
	echo "make mutation: took $$(( $$(date +%s) - start )) s (exit $$status)"; \
	$(PY) tools/mutation_report.py $(MODULES); exit $$status

mutation-report:
	$(PY) tools/mutation_report.py --survivors $(MODULES)

dry-run-paper: install
	$(VENV)/bin/snakemake -n --configfile config/paper.yaml

clean-results:  # run outputs and the tables / figures made from them (not tables/reported)
	rm -rf results .snakemake
	rm -f tables/*.md tables/*.tex tables/*.csv figures/*.png figures/*.pdf
