#!/usr/bin/env bash
# device_wheels.sh: the wheels the lent GPU machine lacks (its python3 is 3.12 with torch, Lightning, pandas, scipy and
# matplotlib, but not Hydra, submitit, Optuna or W&B) into .whl/ (git-ignored through .git/info/exclude), at the
# versions the study trees' venvs hold. Then `device_run.sh` installs them there (the device tool: carry [".whl"]).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
grep -qx '/.whl/' .git/info/exclude || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64; do platforms+=(--platform "$p"); done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" -d .whl \
  hydra-core==1.3.8 omegaconf==2.3.1 hydra-submitit-launcher==1.2.0 submitit==1.5.4 optuna==5.0.0 alembic==1.20.1 \
  Mako==1.4.3 SQLAlchemy==2.1.9 colorlog==6.12.0 wandb==0.31.0 cwevals==0.0.1b1 distro==1.9.0 sniffio==1.3.1 \
  pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 platformdirs==4.14.9 \
  opentelemetry-api==1.45.2 opentelemetry-sdk==1.45.2 opentelemetry-proto==1.45.2 \
  opentelemetry-semantic-conventions==0.66b2 opentelemetry-exporter-http-transport==0.66b2 \
  opentelemetry-exporter-otlp-common==0.66b2 opentelemetry-exporter-otlp-proto-common==1.45.2 \
  opentelemetry-exporter-otlp-proto-http==1.45.2 googleapis-common-protos==1.76.0 protobuf==7.36.2 typing_extensions==4.16.0
python3 -m pip wheel -q --no-deps antlr4-python3-runtime==4.9.3 -w .whl   # an sdist only: built here (pure Python)
du -sh .whl
