# The two commands: `make demo` and `make test`. Both create .venv if needed and
# install everything offline-capable (torch, sam2, Ray, decord, ...), then run.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Label Studio (the review server) pins numpy<2.3 and an older OpenCV: it gets a venv of
# its own and runs as a separate process; tubelet talks to it through label-studio-sdk.
LS_VENV  := .venv-ls
LS_STAMP := $(LS_VENV)/.installed
# label-studio-sdk's runtime needs for the API client (its numpy/OpenCV pins are for
# converters tubelet does not use, so the SDK itself goes in with --no-deps)
LS_SDK     := label-studio-sdk==2.1.2
LS_SDK_RUN := "xmljson==0.2.1" "jsf>=0.11.2,<0.12" "lxml>=6.1" "pyjwt>=2.13,<2.14" "appdirs>=1.4.3" \
              "ujson>=5.8" "ijson>=3.2.3" pandas

# Offline and loopback-only for everything the project starts.
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0
export RAY_USAGE_STATS_ENABLED := 0
export HF_HUB_OFFLINE := 1
export YOLO_OFFLINE := 1
export YOLO_AUTOINSTALL := 0

.PHONY: install demo test lint format bench clean browser

install: $(STAMP) $(LS_STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip setuptools wheel
	# torch/torchvision first: pinned, so sam2 and later extras never pull another build
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	# sam2 builds without its CUDA extension and against the installed torch
	SAM2_BUILD_CUDA=0 $(BIN)/pip install -q --no-build-isolation sam2==1.1.0
	$(BIN)/pip install -q -e '.[dev,lint,s3,lite,yolo,vlm,vlm-api,eval,dedup,release]'
	# ultralytics pulls opencv-python (GUI build) next to opencv-python-headless; both own
	# cv2/, so reinstall the headless files last: servers without libGL still import cv2
	$(BIN)/pip install -q --force-reinstall --no-deps "opencv-python-headless==$$($(BIN)/python -c 'from importlib.metadata import version; print(version("opencv-python-headless"))')"
	$(BIN)/pip install -q --no-deps $(LS_SDK)
	$(BIN)/pip install -q $(LS_SDK_RUN) "playwright>=1.40"
	touch $(STAMP)

$(LS_STAMP):
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install -q -U pip
	$(LS_VENV)/bin/pip install -q label-studio==1.23.2
	touch $(LS_STAMP)

# Headless Chromium (Debian's) for the labeling-page screenshot test; where it cannot be
# installed (no root, no apt) that one test skips.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium not installed: the labeling-page screenshot test will skip"

# $(call demo_wrote,PATH,WHAT): one line of the list `make demo` ends with; fails when PATH is missing.
# README.md's quick start lists the same paths (tests/test_readme.py keeps the two in step).
demo_wrote = test -e $(1) || { echo "make demo: $(1) is missing" >&2; exit 1; }; printf '  %-22s %s\n' "$(1)" "$(2)"

demo: install
	rm -rf out/demo
	$(BIN)/tubelet sample out/sample
	$(BIN)/tubelet run manifests/demo.yaml --no-progress
	$(BIN)/tubelet validate out/demo
	$(BIN)/tubelet status out/demo
	$(BIN)/tubelet query out/demo "SELECT t.category, t.n_visible AS frames, round(t.start_s, 2) AS enters_s, round(t.end_s, 2) AS leaves_s FROM tubelets t ORDER BY t.category"
	rm -rf out/demo-track
	$(BIN)/tubelet run manifests/demo-track.yaml --no-progress
	$(BIN)/tubelet validate out/demo-track
	$(BIN)/tubelet eval out/demo-track out/demo
	rm -rf out/demo-strefer
	$(BIN)/tubelet run manifests/demo-strefer.yaml --no-progress
	$(BIN)/tubelet validate out/demo-strefer
	$(BIN)/tubelet query out/demo-strefer "SELECT referring_expression, json_extract_string(attributes, '$$.direction') AS moving FROM entities ORDER BY entity_id"
	$(BIN)/tubelet query out/demo-strefer "SELECT task_type, messages[1].content AS question, messages[2].content AS answer FROM instructions QUALIFY row_number() OVER (PARTITION BY task_type ORDER BY instruction_id) = 1 ORDER BY task_type"
	$(BIN)/tubelet preview out/demo-strefer --video demo-scene --to out/demo-preview.gif --contact-sheet out/demo-preview.png
	rm -rf out/demo-release
	$(BIN)/tubelet release out/demo-strefer --version demo --to out/demo-release --format videorefer,videollama3,llava-video,video-llava,unistg
	@echo
	@echo "make demo wrote:"
	@$(call demo_wrote,out/sample/,the synthetic sample: scene.mp4 with its frames/ and ground-truth masks/)
	@$(call demo_wrote,out/demo/,dataset: the sample's ground truth imported as tubelets)
	@$(call demo_wrote,out/demo-track/,dataset: the same video tracked from scratch (lite profile))
	@$(call demo_wrote,out/demo-strefer/,dataset: tracks + entities + action timelines + instruction-answer pairs)
	@$(call demo_wrote,out/demo-preview.gif,the strefer tracks drawn over the video)
	@$(call demo_wrote,out/demo-preview.png,a contact sheet of the same)
	@$(call demo_wrote,out/demo-release/,a release of out/demo-strefer in five trainer formats; README.md is its card)
	@echo "Next: source .venv/bin/activate  (puts tubelet on your PATH; or call .venv/bin/tubelet), then"
	@echo "  tubelet status out/demo-strefer"
	@echo "  tubelet report out/demo-strefer --to out/demo-report"
	@echo "  tubelet query out/demo-strefer \"SELECT task_type, count(*) AS n FROM instructions GROUP BY 1 ORDER BY 1\""
	@echo "README.md, 'Quick start', says what each of these is."

# PYTEST_ARGS: e.g. `make test PYTEST_ARGS="-m 'not slow'"` or "--durations=20"
test: install browser
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Lint: ruff (rules and format), mypy on the bottom layers, the import-layer contract.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy -p tubelet.schemas -p tubelet.engine
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/pip install -q -e '.[bench]'  # lap, for Ultralytics' ByteTrack in bench_lite_vs_ultralytics.py
	$(BIN)/python bench/bench_runners.py
	$(BIN)/python bench/bench_driver.py
	$(BIN)/python bench/bench_parallel.py
	$(BIN)/python bench/bench_decode.py
	$(BIN)/python bench/bench_query.py

clean:
	rm -rf out build *.egg-info
