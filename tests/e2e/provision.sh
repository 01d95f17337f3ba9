#!/usr/bin/env bash
# Provision the real control plane for the end-to-end suite from Debian's packages only:
#   etcd (etcd-server, 3.4) and kube-apiserver / kube-controller-manager / agnhost v1.20.2
#   built from Debian's `kubernetes` source package.
# Binaries are cached under ${LLMISVC_K8S_CACHE:-~/.cache/llmisvc/k8s} so later runs skip the build.
# Idempotent: exits quickly when everything is already there. Prints the cache dir on success.
set -euo pipefail

CACHE="${LLMISVC_K8S_CACHE:-$HOME/.cache/llmisvc/k8s}"
BIN="$CACHE/bin"
mkdir -p "$BIN"
exec 9>"$CACHE/.lock"
flock 9

# Bump STAMP when the build recipe changes: cached binaries without it are rebuilt.
# reflect2-1.0.2: Kubernetes 1.20 vendors modern-go/reflect2 1.0.1, which segfaults on map
# iteration when built with Go >= 1.18 (bookworm has 1.19); we swap in Debian's packaged 1.0.2.
STAMP="k8s-1.20.2+reflect2-1.0.2"
if [[ "$(cat "$BIN/.stamp" 2>/dev/null)" != "$STAMP" ]]; then
  rm -f "$BIN/kube-apiserver" "$BIN/kube-controller-manager" "$BIN/agnhost"
fi

want=(kube-apiserver kube-controller-manager)
if [[ "${LLMISVC_WANT_AGNHOST:-0}" == 1 ]]; then want+=(agnhost); fi

missing=()
for b in "${want[@]}"; do [[ -x "$BIN/$b" ]] || missing+=("$b"); done
need_etcd=0
command -v etcd >/dev/null 2>&1 || need_etcd=1
command -v kubectl >/dev/null 2>&1 || need_kubectl=1

if [[ ${#missing[@]} -eq 0 && $need_etcd -eq 0 && -z "${need_kubectl:-}" ]]; then
  echo "$CACHE"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt_updated=0
apt_update() { if [[ $apt_updated -eq 0 ]]; then apt-get update -qq >&2; apt_updated=1; fi; }

if [[ $need_etcd -eq 1 ]]; then
  apt_update
  apt-get install -y -qq etcd-server >&2
fi
if [[ -n "${need_kubectl:-}" ]]; then
  apt_update
  # kubectl ships in Debian as kubernetes-client
  apt-get install -y -qq kubernetes-client >&2
fi

if [[ ${#missing[@]} -gt 0 ]]; then
  # deb-src entry for bookworm, so that `apt-get source` finds the kubernetes source package.
  if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list 2>/dev/null; then
    cat >/etc/apt/sources.list.d/llmisvc-src.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt_updated=0
  fi
  apt_update
  apt-get install -y -qq golang-go rsync golang-github-modern-go-reflect2-dev >&2
  SRCDIR="$CACHE/src"
  mkdir -p "$SRCDIR"
  cd "$SRCDIR"
  if ! ls kubernetes_*.orig.tar.gz >/dev/null 2>&1; then
    apt-get source --download-only kubernetes >&2
  fi
  if [[ ! -d tree ]]; then
    rm -rf tree.tmp && mkdir tree.tmp
    tar -xzf kubernetes_*.orig.tar.gz -C tree.tmp --strip-components=1
    mv tree.tmp tree
  fi
  # The reflect2 fix (see STAMP above).
  r2=tree/vendor/github.com/modern-go/reflect2
  rm -rf "$r2" && mkdir -p "$r2"
  cp -a /usr/share/gocode/src/github.com/modern-go/reflect2/. "$r2/"
  rm -f "$r2/go.mod"
  mkdir -p .go/src/k8s.io
  ln -sfn "$SRCDIR/tree" .go/src/k8s.io/kubernetes
  cd .go/src/k8s.io/kubernetes
  for b in "${missing[@]}"; do
    case "$b" in
      agnhost) what=test/images/agnhost ;;
      *) what="cmd/$b" ;;
    esac
    echo "building $b (this takes a few minutes once)" >&2
    GOPATH="$SRCDIR/.go" GO111MODULE=off GOFLAGS= CGO_ENABLED=0 make WHAT="$what" >&2
    out=$(find _output -type f -name "$b" -perm -u+x | head -n1)
    [[ -n "$out" ]] || { echo "build of $b produced no binary" >&2; exit 1; }
    cp "$out" "$BIN/$b.tmp" && mv "$BIN/$b.tmp" "$BIN/$b"
  done
  echo "$STAMP" > "$BIN/.stamp"
fi
echo "$CACHE"
