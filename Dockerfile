# One image for every settlers-testbed component: the producers (`settlers serve`),
# the order app (`order-app`), the NetMARKS extender and the firmament scheduler
# (`schedulers ...`) and the harness. There is deliberately no ENTRYPOINT/CMD: the
# Helm chart names the command of each container.
#
#   docker build -t REGISTRY/settlers-testbed:0.1.0 .
#   docker push REGISTRY/settlers-testbed:0.1.0
#
# See docs/kubernetes-deploy.md. The base is pinned by tag; for reproducible builds
# pin the digest too, e.g. FROM python:3.11.14-slim-bookworm@sha256:<digest>
# (`docker buildx imagetools inspect python:3.11.14-slim-bookworm` prints it).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- build: install the project and its dependencies into a virtualenv ------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# hdrhistogram publishes no wheel for aarch64 (arm64) on Python 3.11, so pip builds it
# from source there, which needs a C compiler (and Python's headers, which a base with
# Debian's python3 lacks). Only in this stage (the runtime stage copies /opt/venv and
# never has gcc) and only off amd64, where every wheel exists.
RUN if [ "$(dpkg --print-architecture)" != amd64 ]; then \
      pkgs="gcc libc6-dev"; \
      python -c 'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
        || pkgs="$pkgs libpython3-dev"; \
      apt-get update \
      && apt-get install -y --no-install-recommends $pkgs \
      && rm -rf /var/lib/apt/lists/*; \
    fi
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# .dockerignore keeps the build context to the packages and their metadata.
COPY pyproject.toml README.md* ./
COPY settlers ./settlers
COPY order_app ./order_app
COPY schedulers ./schedulers
COPY results ./results
COPY harness ./harness
COPY analysis ./analysis
RUN pip install . \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} + \
 && python -m compileall -q /opt/venv/lib

# --- runtime: the slim base, the virtualenv, a non-root user -----------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="settlers-testbed" \
      org.opencontainers.image.description="Settlers microservices, order app and network-aware schedulers" \
      org.opencontainers.image.source="https://github.com/settlers-testbed/settlers-testbed" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/venv /opt/venv
# Numeric uid/gid so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
RUN groupadd --system --gid 10001 settlers \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp settlers
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
