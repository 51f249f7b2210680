# The two commands of the README:
#   make repro   install everything, then `dvc repro` on the built-in studio corpus
#   make test    install everything, then run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SYSTEM_PACKAGES := ffmpeg espeak-ng pocketsphinx-testdata chromium

.PHONY: install system-deps test acceptance repro rehearsal bench

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all]'
	touch $@

install: system-deps $(VENV)/.installed

test: install
	$(PY) -m pytest -q

acceptance: install
	$(PY) -m pytest -q -m slow

bench: install
	$(VENV)/bin/avdf bench decode
	$(VENV)/bin/avdf bench preprocess
	$(VENV)/bin/avdf bench train
	$(VENV)/bin/avdf bench dag

repro: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" DVC_NO_ANALYTICS=1 $(VENV)/bin/dvc repro

# The real-corpus DAG (paper profile) on replica corpora: see README "Real corpora".
rehearsal: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" DVC_NO_ANALYTICS=1 $(VENV)/bin/dvc repro rehearsal/dvc.yaml
