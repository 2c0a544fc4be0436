# syntax=docker/dockerfile:1
# The operator image: the same file for Docker users (`docker build -t ftmoe-operator .`)
# and for `make image`, which builds it with buildah where there is no Docker engine
# (deploy/image/build.sh).
#
#   BASE             a Debian-based Python 3.11 image. Default: the public python:3.11-slim.
#                    `make image` passes a Debian bookworm image it made with debootstrap,
#                    because no image registry is reachable from the project's machines.
#   TORCH_INDEX_URL  where torch comes from. Default: the PyTorch CPU-only index (about
#                    200 MB of torch). Empty: PyPI's build, which on Linux x86-64 is the
#                    CUDA one (about 3.5 GB with its nvidia wheels; it runs on CPU). `make
#                    image` passes it empty: the CPU-only index is not reachable here.
#   DEPS             the image the runtime stage starts from: the `deps` stage below, or
#                    an image built from it earlier (`make image` caches it by the hash of
#                    this file, pyproject.toml and deploy/image/layers.py, so a code change
#                    does not reinstall torch).
#
# The dependency ranges live in pyproject.toml only; this file reads them from there.

ARG BASE=python:3.11-slim
ARG DEPS=deps

FROM ${BASE} AS build
WORKDIR /src
# A venv rather than the system interpreter: Debian's python3 refuses pip (PEP 668).
RUN python3 -m venv /opt/build && /opt/build/bin/pip install --no-cache-dir --quiet "build>=1.2,<2"
COPY pyproject.toml README.md ./
COPY ftmoe ./ftmoe
COPY operator ./operator
COPY predictor ./predictor
COPY simulator ./simulator
RUN /opt/build/bin/python -m build --wheel --outdir /wheels .

# Everything the operator imports, from pyproject.toml alone: it changes far less often
# than the code, so this stage stays cached across code changes. deploy/image/layers.py
# resolves it once and installs it in three layers (CUDA libraries, torch, the rest), each
# with exact versions, so that no layer is gigabytes on its own (see that file for why).
FROM ${BASE} AS deps
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN python3 -m venv /opt/ftmoe && useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin ftmoe
COPY pyproject.toml deploy/image/layers.py /tmp/deps/
RUN /opt/ftmoe/bin/python /tmp/deps/layers.py plan
RUN /opt/ftmoe/bin/python /tmp/deps/layers.py install cuda
RUN /opt/ftmoe/bin/python /tmp/deps/layers.py install torch
RUN /opt/ftmoe/bin/python /tmp/deps/layers.py install rest && rm -rf /tmp/deps

FROM ${DEPS} AS runtime
COPY --from=build /wheels /wheels
RUN /opt/ftmoe/bin/pip install --no-cache-dir --no-deps /wheels/*.whl \
    && /opt/ftmoe/bin/pip check \
    && rm -rf /wheels \
    && /opt/ftmoe/bin/pip uninstall --yes --quiet pip
COPY crds /opt/ftmoe/crds
USER 65532:65532
ENV PATH=/opt/ftmoe/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
ENTRYPOINT ["ftmoe"]
CMD ["operator", "run"]
