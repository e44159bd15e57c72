# driftloop's one image. It runs the flow-run Jobs (`prefect flow-run execute`, the Kubernetes
# worker's command), the Prefect worker, the driftloop API, the bootstrap Job, and the
# `prefect server start` and `mlflow server` Deployments of the chart.
#
#   docker build -t driftloop --build-arg DRIFTLOOP_GIT_SHA="$(git rev-parse HEAD)" .
#
# Build args: BASE_IMAGE (any Debian-based image with python3 3.11+ and its venv module); the usual
# PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST and PIP_CERT for a PyPI mirror or proxy (they
# reach the builder stage only); DRIFTLOOP_GIT_SHA, the code version recorded on every trained model.
#
# Plain Dockerfile syntax only (no RUN --mount, no heredocs): it builds with the legacy builder of
# Debian's Docker 20.10 as well as with BuildKit.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---- builder: a venv at /opt/venv with every dependency, and driftloop's own wheel ----------------
FROM ${BASE_IMAGE} AS builder

ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Dependencies first, from pyproject.toml alone, so that a change to the code does not reinstall them.
COPY pyproject.toml ./
COPY docker/requirements.txt docker/requirements.txt
RUN python -c "import tomllib; project = tomllib.load(open('pyproject.toml', 'rb'))['project']; print(*project['dependencies'], *project['optional-dependencies']['kubernetes'], sep='\n')" > /tmp/project-requirements.txt \
    && pip install -r /tmp/project-requirements.txt -r docker/requirements.txt \
    && pip check

COPY README.md ./
COPY service/ service/
COPY flows/ flows/
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && mkdir -p /opt/driftloop \
    && cp -r pyproject.toml README.md service flows /opt/driftloop/ \
    && python -m compileall -q /opt/driftloop

# ---- the image: the venv and the code, no build tools, a non-root user --------------------------
FROM ${BASE_IMAGE}

# The dependencies' layer changes only with pyproject.toml or docker/requirements.txt.
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # Nothing phones home.
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=1 \
    # readOnlyRootFilesystem: everything a process writes goes under /tmp (an emptyDir in the chart).
    HOME=/tmp \
    TMPDIR=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    XDG_CONFIG_HOME=/tmp/.config \
    XDG_DATA_HOME=/tmp/.local/share \
    PREFECT_HOME=/tmp/prefect \
    MPLCONFIGDIR=/tmp/matplotlib \
    # The image has no git: GitPython (imported by MLflow) stays quiet about it.
    GIT_PYTHON_REFRESH=quiet

# A numeric user that the chart's runAsUser and runAsNonRoot can name; /tmp is its home.
RUN groupadd --gid 10001 driftloop \
    && useradd --uid 10001 --gid 10001 --no-log-init --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin driftloop

# driftloop itself, from the wheel built above (no index, no dependencies: they are in the venv),
# and its source at /opt/driftloop, where the deployments' pull step sets the working directory and
# Prefect loads the flows' entrypoints (flows/monitor.py:monitor and the others).
COPY --from=builder /wheels/ /opt/driftloop-wheels/
RUN pip install --no-index --no-deps /opt/driftloop-wheels/*.whl \
    && rm -rf /opt/driftloop-wheels
COPY --from=builder /opt/driftloop /opt/driftloop

ARG DRIFTLOOP_GIT_SHA=unknown
ENV DRIFTLOOP_GIT_SHA=${DRIFTLOOP_GIT_SHA}
LABEL org.opencontainers.image.title="driftloop" \
      org.opencontainers.image.description="Drift-triggered retraining of scikit-learn models with Prefect, Evidently and MLflow" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.revision="${DRIFTLOOP_GIT_SHA}"

WORKDIR /opt/driftloop
USER 10001:10001

# The image runs flow runs, a worker, three servers and one-off Jobs: no single command tells whether
# "it" is healthy, and Kubernetes ignores HEALTHCHECK anyway. The chart gives each Deployment its own
# liveness and readiness probes (the API's /healthz, the Prefect server's /api/health, MLflow's /health).
HEALTHCHECK NONE

# No ENTRYPOINT: the Kubernetes worker passes `prefect flow-run execute` as the container's args,
# and the chart gives each Deployment its command.
CMD ["driftloop", "--help"]
