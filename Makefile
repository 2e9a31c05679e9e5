# Targets for developers; CI runs .ci/run (the README's test command).
GO ?= go
GOBIN := $(shell $(GO) env GOPATH)/bin
STATICCHECK_VERSION ?= v0.8.2
GOVULNCHECK_VERSION ?= v1.9.0
DEADCODE_VERSION ?= v0.52.0
GOVULNDB ?= https://vuln.go.dev
FUZZTIME ?= 10s
FUZZMINIMIZETIME ?= 100x

.PHONY: build test bench lint vulncheck fuzz tools

build:
	$(GO) build -o bin/evident ./cmd/evident

test:
	$(GO) test -race ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

tools:
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GO) install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)
	$(GO) install golang.org/x/tools/cmd/deadcode@$(DEADCODE_VERSION)

# lint fails on functions that no command reaches (deadcode): code only
# tests call belongs in the tests.
lint: tools
	$(GO) vet ./...
	$(GOBIN)/staticcheck ./...
	@dead=$$($(GOBIN)/deadcode ./cmd/...); if [ -n "$$dead" ]; then echo "$$dead"; echo "deadcode: functions no command reaches: remove them, or move them into the tests that call them"; exit 1; fi

# vulncheck runs govulncheck on evident itself against GOVULNDB (default
# https://vuln.go.dev). Offline, build a vuln.go.dev layout from the osv.dev
# Go snapshot first:
#   (cd examples/shop && go run ./tools/mkvulndb -zip ../../../shared/data/osv-go-*.zip -out /tmp/vdb)
#   make vulncheck GOVULNDB=file:///tmp/vdb
vulncheck: tools
	$(GOBIN)/govulncheck -db $(GOVULNDB) ./...

# fuzz runs every FuzzXxx target for FUZZTIME each, minimizing new inputs
# for at most FUZZMINIMIZETIME, and prints a table of the executions
# (bench/fuzz-campaign.sh, docs/fuzzing.md).
fuzz:
	FUZZTIME=$(FUZZTIME) FUZZMINIMIZETIME=$(FUZZMINIMIZETIME) bench/fuzz-campaign.sh
