# syntax=docker/dockerfile:1
# The operator image. It cannot be built on the project's development machines (no
# Docker engine there); deploy/kind/e2e.sh builds it where Docker exists. Keep the
# dependency list in step with pyproject.toml: the wheel carries the ranges, this file
# only picks torch's CPU build so the image does not carry 3 GB of CUDA libraries.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
RUN python -m pip install --no-cache-dir "build>=1.2,<2"
COPY pyproject.toml README.md ./
COPY ftmoe ./ftmoe
COPY operator ./operator
COPY predictor ./predictor
COPY simulator ./simulator
RUN python -m build --wheel --outdir /wheels .

FROM python:${PYTHON_VERSION}-slim AS runtime
# CPU-only torch from the PyTorch index first, so the wheel's `torch` requirement is
# already satisfied and pip does not fetch the CUDA build from PyPI.
RUN python -m pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu "torch>=2.4,<2.16"
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY crds /opt/ftmoe/crds
RUN useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin ftmoe
USER 65532:65532
ENV PYTHONUNBUFFERED=1 HOME=/tmp
ENTRYPOINT ["ftmoe"]
CMD ["operator", "run"]
