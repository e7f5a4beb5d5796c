#!/bin/sh
# Run by deploy/Dockerfile before the slow `pip install`: can pip reach the package index, and
# does it trust its TLS certificate? Fails in seconds with what to do, instead of pip retrying
# for a while and then printing a stack of SSL errors. PIP_CERT / PIP_INDEX_URL / HTTPS_PROXY
# are pip's own settings, used as the install will use them.
set -u
probe=$(mktemp -d)
if out=$(pip download --no-deps --retries 0 --timeout 15 --disable-pip-version-check -d "$probe" pip 2>&1); then
  rm -rf "$probe"
  exit 0
fi
rm -rf "$probe"
echo "$out" | tail -n 3 >&2
if echo "$out" | grep -qiE "certificate verify failed|CERTIFICATE_VERIFY_FAILED|self[- ]signed certificate"; then
  echo "cytoatlas image build: pip does not trust the package index's TLS certificate. Behind a" \
       "TLS-intercepting proxy, copy a CA bundle that includes the proxy's CA into deploy/ca/ and" \
       "build with CYTOATLAS_CA_BUNDLE=deploy/ca/<file>.pem docker-compose build (or docker build" \
       "--build-arg CA_BUNDLE=deploy/ca/<file>.pem); see deploy/README.md." >&2
else
  echo "cytoatlas image build: pip cannot reach the package index (no network from the build, or" \
       "a proxy that needs HTTPS_PROXY). docker-compose.yml builds with network: host; see" \
       "deploy/README.md." >&2
fi
exit 1
