# Deployment targets: the container image, the Helm chart, and their tests.
# The top-level Makefile includes this file; paths are relative to the
# repository root (make runs there).
#
#   make image         build the container image (Dockerfile) offline with podman:
#                      FROM scratch, the static bin/otelcol-tailsift, the host's CA bundle
#   make helm          build Helm v4 into bin/helm once (about 4 minutes the first time)
#   make test-deploy   the image test and the chart tests (deploy/test, a module of its own
#                      so that k8s.io/api stays out of the main module); part of `make test`
#   IMAGE=registry.example/tailsift:0.1.0 make image    another tag

GO ?= go
IMAGE_VERSION   := $(shell sed -n 's/^  version: *//p' builder-config.yaml)
IMAGE           ?= localhost/tailsift:$(IMAGE_VERSION)
CONTAINER_TOOL  ?= podman
# crun fails on these machines and the default ulimits exceed the sandbox's:
# deploy/image/containers.conf picks runc and lower limits.
export CONTAINERS_CONF ?= $(CURDIR)/deploy/image/containers.conf
HELM_VERSION    := v4.3.2
HELM            := $(CURDIR)/bin/helm-$(HELM_VERSION)
CA_BUNDLE       ?= /etc/ssl/certs/ca-certificates.crt

.PHONY: image helm deploy-deps test-deploy lint-deploy

$(CURDIR)/bin/ca-certificates.crt: $(CA_BUNDLE)
	mkdir -p $(dir $@) && cp $< $@

image: $(BIN) $(CURDIR)/bin/ca-certificates.crt
	$(CONTAINER_TOOL) build --file Dockerfile --tag $(IMAGE) \
		--build-arg VERSION=$(IMAGE_VERSION) \
		--build-arg REVISION=$$(git rev-parse --short HEAD 2>/dev/null || echo unknown) \
		--build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) .

helm: $(HELM)

# Built from the module proxy once, then reused (it is a file in bin/).
$(HELM):
	mkdir -p $(dir $@)
	GOBIN=$(dir $@)gobin CGO_ENABLED=0 $(GO) install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
	mv $(dir $@)gobin/helm $@ && rmdir $(dir $@)gobin

## deploy-deps: podman and runc for the image test (installed only as root)
deploy-deps:
	bash scripts/deps/deploy.sh

test-deploy: deploy-deps $(BIN) $(HELM)
	cd deploy/test && TAILSIFT_BIN=$(BIN) HELM=$(HELM) $(GO) test -count=1 -timeout 15m ./...

lint-deploy:
	cd deploy/test && $(TOOLS) golangci-lint run ./...

test: test-deploy
lint: lint-deploy
