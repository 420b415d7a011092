# syntax=docker/dockerfile:1
#
# Production image of Oriole. Build:   docker build -t oriole .
#                             Run:     docker run --rm oriole --help
# The default command is `oriole worker`; docker-compose.yml runs the same image as
# `oriole gateway` too. See docs/deployment.md.
#
# Two stages: `build` installs the package and its dependencies into a virtualenv at
# /opt/oriole; `runtime` copies only that virtualenv, so build tools and the source tree
# stay out of the final image. Every dependency ships binary wheels, so no compiler is needed.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/oriole
ENV PATH=/opt/oriole/bin:$PATH

WORKDIR /src

# 1. Dependencies only, read from pyproject.toml ([project].dependencies, no dev extras).
#    This layer is rebuilt only when pyproject.toml changes, not on every source edit.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(deps))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# 2. The package itself, from the source tree (not editable, no dependencies: they are above).
#    Keep this list in step with [tool.setuptools.packages.find] in pyproject.toml.
COPY README.md ./
COPY oriole ./oriole
COPY streams ./streams
COPY projections ./projections
COPY gateway ./gateway
RUN pip install --no-deps . \
    && oriole --help > /dev/null

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="oriole" \
      org.opencontainers.image.description="Run LLM agents through grid mazes: an event-sourced asyncio service on Kafka" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed, unprivileged uid/gid so that volume ownership is predictable.
ARG ORIOLE_UID=10001
ARG ORIOLE_GID=10001
RUN groupadd --system --gid "${ORIOLE_GID}" oriole \
    && useradd --system --uid "${ORIOLE_UID}" --gid oriole --home-dir /data/oriole \
        --no-create-home --shell /usr/sbin/nologin oriole \
    && mkdir -p /data/oriole \
    && chown oriole:oriole /data/oriole

COPY --from=build /opt/oriole /opt/oriole

ENV PATH=/opt/oriole/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ORIOLE_HOME=/data/oriole

# State directory: maze library ($ORIOLE_HOME/mazes), config.toml, logs. Created above and
# owned by `oriole`, so a new named volume mounted here inherits that ownership.
VOLUME ["/data/oriole"]
WORKDIR /data/oriole
# Numeric, so that runtimes enforcing "run as non-root" (Kubernetes runAsNonRoot) can verify it.
USER ${ORIOLE_UID}:${ORIOLE_GID}

# The gateway's websocket/HTTP port (ORIOLE_GATEWAY_PORT, default 8080).
EXPOSE 8080

# No HEALTHCHECK here: docker-compose.yml defines the checks per service.
ENTRYPOINT ["oriole"]
CMD ["worker"]
