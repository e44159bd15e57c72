# driftloop's one image. It runs the flow-run Jobs (`prefect flow-run execute`, the Kubernetes
# worker's command), the Prefect worker, the driftloop API, the bootstrap Job, and the
# `prefect server start` and `mlflow server` Deployments of the chart.
#
#   docker build -t driftloop --build-arg DRIFTLOOP_GIT_SHA="$(git rev-parse HEAD)" .
#
# Build args:
#   BASE_IMAGE         any Debian-based image with python3 (3.11 or newer) and its venv module
#   PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST, PIP_CERT, PIP_DEFAULT_TIMEOUT
#                      for a PyPI mirror or proxy; they reach the builder stage only
#   DRIFTLOOP_GIT_SHA  the code version recorded on every trained model
# Python packages beyond pyproject.toml's dependencies and its `kubernetes` extra are pinned in
# docker/requirements.txt.
#
# Plain Dockerfile syntax only (no RUN --mount, no heredocs): it builds with the legacy builder of
# Debian's Docker 20.10 as well as with BuildKit.
#
# checkov can't resolve the ARG in `FROM ${BASE_IMAGE}` and takes it for an untagged image; its default
# names a tag, and a build that passes BASE_IMAGE names its own.
# checkov:skip=CKV_DOCKER_7:BASE_IMAGE is an ARG whose default is the tagged python:3.11-slim-bookworm
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---- requirements: pyproject.toml's dependencies (and its `kubernetes` extra) as a list --------
# A stage of its own so that editing pyproject.toml elsewhere (tool settings, the version) leaves the
# list, and so the cached dependency layer below, untouched: COPY --from hits the cache when the file
# is the same, and its mtime is pinned because the legacy builder counts that too.
FROM ${BASE_IMAGE} AS requirements
WORKDIR /src
COPY pyproject.toml ./
RUN python3 -c "import tomllib; \
        project = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
        print(*project['dependencies'], *project['optional-dependencies']['kubernetes'], sep='\n')" \
        > /requirements.txt \
    && touch -d @0 /requirements.txt

# ---- builder: a venv at /opt/venv with every dependency, and driftloop's own wheel ----------------
FROM ${BASE_IMAGE} AS builder

ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ARG PIP_CERT
ARG PIP_DEFAULT_TIMEOUT
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Dependencies first, so that a change to the code does not reinstall them. The test suites that
# some of them ship (about 120 MB) go: nothing imports them at run time.
COPY --from=requirements /requirements.txt requirements/project.txt
COPY docker/requirements.txt requirements/image.txt
RUN pip install -r requirements/project.txt -r requirements/image.txt \
    && pip check \
    && find /opt/venv/lib/python3*/site-packages/pandas /opt/venv/lib/python3*/site-packages/numpy \
        /opt/venv/lib/python3*/site-packages/scipy /opt/venv/lib/python3*/site-packages/pyarrow \
        /opt/venv/lib/python3*/site-packages/matplotlib /opt/venv/lib/python3*/site-packages/sklearn \
        -depth -type d -name tests -exec rm -rf {} +

COPY pyproject.toml README.md ./
COPY service/ service/
COPY flows/ flows/
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && mkdir -p /opt/driftloop \
    && cp -r pyproject.toml README.md service flows /opt/driftloop/ \
    && python -m compileall -q /opt/driftloop

# ---- the image: the venv and the code, no build tools, a non-root user --------------------------
FROM ${BASE_IMAGE}

# The dependencies' layer changes only with pyproject.toml's dependencies or docker/requirements.txt.
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # Nothing phones home (DO_NOT_TRACK covers Evidently too), and pod logs get no progress bars.
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=1 \
    MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false \
    # readOnlyRootFilesystem: everything a process writes goes under /tmp (an emptyDir in the chart).
    HOME=/tmp \
    TMPDIR=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    XDG_CONFIG_HOME=/tmp/.config \
    XDG_DATA_HOME=/tmp/.local/share \
    PREFECT_HOME=/tmp/prefect \
    PREFECT_UI_STATIC_DIRECTORY=/tmp/prefect-ui \
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
      org.opencontainers.image.description="Drift-triggered retraining with Prefect, Evidently and MLflow" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.revision="${DRIFTLOOP_GIT_SHA}"

WORKDIR /opt/driftloop
USER 10001:10001

# The image runs flow runs, a worker, three servers and one-off Jobs: no single command tells whether
# "it" is healthy, and Kubernetes ignores HEALTHCHECK anyway. The chart gives each Deployment its own
# liveness and readiness probes (the API's /healthz and /readyz, the Prefect server's /api/health,
# MLflow's /health).
HEALTHCHECK NONE

# No ENTRYPOINT: the Kubernetes worker passes `prefect flow-run execute` as the container's args,
# and the chart gives each Deployment its command.
CMD ["driftloop", "--help"]
