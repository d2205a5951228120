#!/usr/bin/env bash
# Creates (or updates) the three Secrets the Switchyard manifests read, in namespace NAMESPACE:
#
#   switchyard-provider-keys     one key per provider API key variable (PROVIDER_KEYS below), taken from this
#                                shell's environment; the value goes straight to kubectl, never to a file or a
#                                command line
#   switchyard-tls-controlplane  ca.crt + the certificate and key of each control-plane replica
#   switchyard-tls-node          ca.crt + the nodes' client certificate and key
#
# The certificates come from CERT_DIR. Missing ones are made there by `switchyard certs` (a private CA and one
# certificate per name below); to use your own PKI instead, put PEM files with these names in CERT_DIR first.
# The names are the DNS names nodes dial (the StatefulSet's pods behind the headless Service
# switchyard-controlplane) and the nodes' client identity. Re-run after renewing certificates: the Secrets
# are updated in place and the processes pick up the new files (new connections use them).
#
# Usage: create-secrets.sh [--print] NAMESPACE CERT_DIR
#   --print  write the Secrets as YAML to stdout instead of applying them (it shows the keys, base64-encoded)
# Environment: SWITCHYARD (default: switchyard), KUBECTL (default: kubectl), PROVIDER_KEYS (default below).
set -euo pipefail

CONTROLPLANE_HOSTS=(
  switchyard-controlplane-0.switchyard-controlplane
  switchyard-controlplane-1.switchyard-controlplane
)
NODE_HOST=switchyard-node
PROVIDER_KEYS=${PROVIDER_KEYS:-OPENAI_API_KEY ANTHROPIC_API_KEY}
SWITCHYARD=${SWITCHYARD:-switchyard}
KUBECTL=${KUBECTL:-kubectl}

print=false
if [ "${1:-}" = "--print" ]; then print=true; shift; fi
if [ $# -ne 2 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
fi
namespace=$1
cert_dir=$2

for var in $PROVIDER_KEYS; do
  if [ -z "${!var:-}" ]; then
    echo "create-secrets.sh: $var is not set: export it first (it goes into the Secret only)" >&2
    exit 2
  fi
done

hosts=("${CONTROLPLANE_HOSTS[@]}" "$NODE_HOST")
needed=(ca.crt)
for host in "${hosts[@]}"; do needed+=("$host.crt" "$host.key"); done
missing=false
for file in "${needed[@]}"; do [ -f "$cert_dir/$file" ] || missing=true; done
if $missing; then
  host_args=()
  for host in "${hosts[@]}"; do host_args+=(--host "$host"); done
  "$SWITCHYARD" certs "$cert_dir" "${host_args[@]}" >&2
fi

# Server-side apply: a client-side `kubectl apply` would also copy the whole Secret, keys included, into its
# last-applied-configuration annotation.
secret() {  # NAME ARGS...: the Secret as YAML, applied or printed
  local name=$1
  shift
  if $print; then
    echo "---"
    "$KUBECTL" create secret generic "$name" --namespace "$namespace" "$@" --dry-run=client -o yaml
  else
    "$KUBECTL" create secret generic "$name" --namespace "$namespace" "$@" --dry-run=client -o yaml \
      | "$KUBECTL" apply --server-side --force-conflicts --field-manager=switchyard-create-secrets -f -
  fi
}

# printf is a shell builtin: the keys appear in no process's arguments.
secret switchyard-provider-keys --from-env-file=<(for var in $PROVIDER_KEYS; do printf '%s=%s\n' "$var" "${!var}"; done)

cp_files=(--from-file="ca.crt=$cert_dir/ca.crt")
for host in "${CONTROLPLANE_HOSTS[@]}"; do
  cp_files+=(--from-file="$host.crt=$cert_dir/$host.crt" --from-file="$host.key=$cert_dir/$host.key")
done
secret switchyard-tls-controlplane "${cp_files[@]}"

secret switchyard-tls-node --from-file="ca.crt=$cert_dir/ca.crt" \
  --from-file="$NODE_HOST.crt=$cert_dir/$NODE_HOST.crt" --from-file="$NODE_HOST.key=$cert_dir/$NODE_HOST.key"
