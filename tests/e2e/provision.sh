#!/usr/bin/env bash
# Builds the end-to-end test bed from the projects' published Go modules (nothing is downloaded
# but Go modules and, if Go is missing, Debian's golang package):
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, agnhost  k8s.io/kubernetes
#   etcd                                                                       go.etcd.io/etcd/server/v3 (etcdmain)
#   lws-controller (LeaderWorkerSet manager)                                   sigs.k8s.io/lws/cmd
#   kwok (simulated nodes and pods)                                            sigs.k8s.io/kwok/cmd/kwok
#   helm                                                                       helm.sh/helm/v3/cmd/helm
# Each tool is built once per version into $CACHE/<tool>-<version>/ and linked from $CACHE/bin/,
# which the test suite reads (tests/support/cluster.rs). A second run only checks the stamps.
# Environment: LLMISVC_TESTBED_CACHE (default ~/.cache/llmisvc), LLMISVC_TESTBED_ONLY="etcd k8s"
# (build a subset). Prints the bin directory on success.
set -euo pipefail

K8S_VERSION=v1.37.2   # k8s.io/kubernetes; its staging modules are v0.37.2
ETCD_VERSION=v3.7.0   # the etcd that k8s.io/kubernetes v1.37.2 pins
LWS_VERSION=v0.9.0
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.22.0
# Bump when the build recipe (not a version) changes: every tool is rebuilt.
RECIPE=3

CACHE="${LLMISVC_TESTBED_CACHE:-$HOME/.cache/llmisvc}"
mkdir -p "$CACHE/bin" "$CACHE/src"
exec 9>"$CACHE/.provision.lock"
flock 9

export GOPATH="$CACHE/gopath"
export GOMODCACHE="$CACHE/gomod"
export GOCACHE="$CACHE/gocache"
export GOFLAGS="-mod=mod -trimpath -buildvcs=false"
export CGO_ENABLED=0
export GOTOOLCHAIN=local
# Two cores: one package graph at a time keeps the linker's peak memory and the machine usable.
export GOMAXPROCS="${GOMAXPROCS:-2}"

ensure_go() {
  if command -v go >/dev/null 2>&1; then return; fi
  if [[ -x /usr/local/go/bin/go ]]; then export PATH="/usr/local/go/bin:$PATH"; return; fi
  echo "go not found; installing Debian's golang-go" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >&2
}

# stamp_ok TOOL VERSION: the tool's directory holds a build of this version and recipe.
stamp_ok() { [[ "$(cat "$CACHE/$1-$2/.stamp" 2>/dev/null)" == "$2+$RECIPE" ]]; }

link_bins() { # link_bins TOOL VERSION NAME...
  local dir="$CACHE/$1-$2"; shift 2
  for n in "$@"; do ln -sfn "$dir/$n" "$CACHE/bin/$n"; done
}

# new_module TOOL VERSION: an empty module directory for the build, printed.
new_module() {
  local src="$CACHE/src/$1-$2"
  rm -rf "$src" && mkdir -p "$src"
  echo "$src"
}

build_kubernetes() {
  local v="$K8S_VERSION" staging="v0.${K8S_VERSION#v1.}"
  local names=(kube-apiserver kube-controller-manager kube-scheduler kubectl agnhost)
  if stamp_ok k8s "$v"; then link_bins k8s "$v" "${names[@]}"; return; fi
  echo "building Kubernetes $v (kube-apiserver, controller-manager, scheduler, kubectl, agnhost); first time only" >&2
  local src; src=$(new_module k8s "$v")
  (
    cd "$src"
    go mod download "k8s.io/kubernetes@$v" >&2
    local mod; mod=$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    {
      echo "module llmisvc.testbed/k8s"
      echo "go 1.26.0"
      echo "require k8s.io/kubernetes $v"
      echo "replace ("
      # k8s.io/kubernetes requires its staging modules as v0.0.0 with local replaces; pin them to
      # the published versions of the same release.
      sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$mod" |
        while read -r m; do echo "	$m => $m $staging"; done
      echo ")"
    } >go.mod
    local minor="${v#v1.}"; minor="${minor%%.*}"
    local ld="-s -w"
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    done
    local out="$CACHE/k8s-$v"; rm -rf "$out"; mkdir -p "$out"
    for n in "${names[@]}"; do
      local pkg="k8s.io/kubernetes/cmd/$n"
      [[ "$n" == agnhost ]] && pkg="k8s.io/kubernetes/test/images/agnhost"
      echo "  go build $pkg" >&2
      go build -ldflags "$ld" -o "$out/$n" "$pkg" >&2
    done
    echo "$v+$RECIPE" >"$out/.stamp"
  )
  link_bins k8s "$v" "${names[@]}"
}

build_etcd() {
  local v="$ETCD_VERSION"
  if stamp_ok etcd "$v"; then link_bins etcd "$v" etcd; return; fi
  echo "building etcd $v; first time only" >&2
  local src; src=$(new_module etcd "$v")
  (
    cd "$src"
    printf 'module llmisvc.testbed/etcd\ngo 1.26.0\nrequire go.etcd.io/etcd/server/v3 %s\n' "$v" >go.mod
    # The etcd binary's own main module carries local replaces, so it cannot be built from the
    # proxy; its main is etcdmain.Main, which this one calls.
    cat >main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    local out="$CACHE/etcd-$v"; rm -rf "$out"; mkdir -p "$out"
    go build -ldflags "-s -w" -o "$out/etcd" . >&2
    echo "$v+$RECIPE" >"$out/.stamp"
  )
  link_bins etcd "$v" etcd
}

# build_plain TOOL VERSION MODULE PACKAGE BINARY: a binary from a module that builds as a dependency.
build_plain() {
  local tool="$1" v="$2" module="$3" pkg="$4" bin="$5"
  if stamp_ok "$tool" "$v"; then link_bins "$tool" "$v" "$bin"; return; fi
  echo "building $tool $v; first time only" >&2
  local src; src=$(new_module "$tool" "$v")
  (
    cd "$src"
    printf 'module llmisvc.testbed/%s\ngo 1.26.0\nrequire %s %s\n' "$tool" "$module" "$v" >go.mod
    local out="$CACHE/$tool-$v"; rm -rf "$out"; mkdir -p "$out"
    go build -ldflags "-s -w" -o "$out/$bin" "$pkg" >&2
    local dir; dir=$(go list -m -f '{{.Dir}}' "$module")
    extras "$tool" "$dir" "$out"
    echo "$v+$RECIPE" >"$out/.stamp"
  )
  link_bins "$tool" "$v" "$bin" $(extra_names "$tool")
}

# Files the suite needs from a tool's own module, beside its binary.
extra_names() {
  case "$1" in
    kwok) echo kwok-stages.yaml ;;
    lws) echo lws-crd.yaml lws-disaggregatedset-crd.yaml lws-webhooks.yaml ;;
  esac
}
extras() { # extras TOOL MODULE_DIR OUT_DIR
  local tool="$1" dir="$2" out="$3"
  case "$tool" in
    kwok)
      # kwok's own "fast" stages (nodes Ready at once, pods Running/Ready once bound) and the
      # lease heartbeat that keeps the node-lifecycle controller from tainting the nodes.
      local s="$dir/kustomize/stage"
      for f in "$s/node/fast/node-initialize.yaml" "$s/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
        "$s/pod/fast/pod-ready.yaml" "$s/pod/fast/pod-complete.yaml" "$s/pod/fast/pod-delete.yaml"; do
        cat "$f"; echo "---"
      done >"$out/kwok-stages.yaml"
      ;;
    lws)
      # The manager also runs the DisaggregatedSet controller, which needs its CRD; the webhook
      # paths and rules are registered by URL from the module's own manifests.
      cp "$dir/config/crd/bases/disaggregatedset.x-k8s.io_disaggregatedsets.yaml" "$out/lws-disaggregatedset-crd.yaml"
      # The LeaderWorkerSet CRD of the same release: the controller needs its fields (the
      # reference CRD in shared/ is older and prunes rollingUpdateConfiguration.partition,
      # on which this controller dereferences).
      cp "$dir/config/crd/bases/leaderworkerset.x-k8s.io_leaderworkersets.yaml" "$out/lws-crd.yaml"
      cp "$dir/config/webhook/manifests.yaml" "$out/lws-webhooks.yaml"
      ;;
  esac
}

ensure_go
only="${LLMISVC_TESTBED_ONLY:-etcd k8s lws kwok helm}"
for t in $only; do
  case "$t" in
    etcd) build_etcd ;;
    k8s) build_kubernetes ;;
    lws) build_plain lws "$LWS_VERSION" sigs.k8s.io/lws sigs.k8s.io/lws/cmd lws-controller ;;
    kwok) build_plain kwok "$KWOK_VERSION" sigs.k8s.io/kwok sigs.k8s.io/kwok/cmd/kwok kwok ;;
    helm) build_plain helm "$HELM_VERSION" helm.sh/helm/v3 helm.sh/helm/v3/cmd/helm helm ;;
    *) echo "unknown test-bed tool: $t" >&2; exit 2 ;;
  esac
done
echo "$CACHE/bin"
