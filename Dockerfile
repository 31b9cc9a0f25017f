# syntax=docker/dockerfile:1
# The podsup operator image: podsup-operator (the kopf operator) plus the
# standalone podsup executable at /opt/podsup/bin/podsup, which the init
# container of every WorkerPool Deployment copies into the worker pod
# (podsup.names.IMAGE_BINARY_PATH).
#
#   docker build -t REGISTRY/podsup-operator:0.1.0 .
#
# Every build step is a script that also runs (and is tested) outside Docker:
# scripts/build-binary.sh and scripts/build-operator-venv.sh.

# --- stage 1: the standalone podsup executable ------------------------------
# Built on Debian 11 (glibc 2.31) so it runs on every glibc >= 2.31 image.
FROM python:3.11.12-slim-bullseye AS binary
# PyInstaller needs binutils (objdump, strip); this stage is thrown away.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md podsup.spec ./
COPY podsup ./podsup
COPY scripts/build-binary.sh ./scripts/
RUN scripts/build-binary.sh --deps --dist /out

# --- stage 2: the operator's virtualenv --------------------------------------
FROM python:3.11.12-slim-bookworm AS operator
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY podsup ./podsup
COPY operator ./operator
COPY scripts/build-operator-venv.sh ./scripts/
RUN scripts/build-operator-venv.sh /opt/podsup/venv

# --- final stage: no compilers, no pip cache, no shell tools added ---------
FROM python:3.11.12-slim-bookworm
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="podsup-operator" \
      org.opencontainers.image.description="WorkerPool operator and the standalone podsup supervisor binary" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/podsup/podsup" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.12-slim-bookworm"
COPY --from=operator /opt/podsup/venv /opt/podsup/venv
COPY --from=binary --chmod=0755 /out/podsup /opt/podsup/bin/podsup
ENV PATH=/opt/podsup/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# 65532: the conventional "nonroot" uid/gid; the chart's securityContext
# runs it with runAsNonRoot and a read-only root filesystem.
USER 65532:65532
# 8080: kopf liveness (/healthz); 8081: the operator's /metrics.
EXPOSE 8080 8081
ENTRYPOINT ["podsup-operator"]
CMD ["run", "--all-namespaces"]
