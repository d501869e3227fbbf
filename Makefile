# Mingus compliance worker cluster. `make help` lists the targets.
SWIFT ?= swift
SERVICES := Deploy/local/services.sh
RELEASE_BIN = $(shell $(SWIFT) build -c release --show-bin-path)

.PHONY: help up down status build release test contract-check check-deploy run scale backup restore bench migrate clean python-tools

help:
	@echo "make run     services, migrations, release build, then the whole cluster in the foreground"
	@echo "make test    services, then every test suite (services are left running; make down stops them)"
	@echo "make contract-check  services, build, then Schemathesis checks the gateway against Contracts/openapi.yaml"
	@echo "make scale KIND=payments N=4  N more workers of a kind, beside make run (each picks a free metrics port)"
	@echo "make check-deploy  static checks of Deploy/: Kubernetes manifests, compose, dashboard, Prometheus rules"
	@echo "make backup  base backup of the local PostgreSQL (Deploy/local/backup.sh; the key file is not in it)"
	@echo "make restore BACKUP=DIR KEY=FILE [PORT=5434]  restore it into a server of its own, checked"
	@echo "make bench   services, release build, then the benchmarks"
	@echo "make up      install (apt-get) and start RabbitMQ and PostgreSQL under .services/"
	@echo "make down    stop them (data is kept; 'Deploy/local/services.sh reset' deletes it)"

# `make up CLUSTER=3` also starts a local three-node RabbitMQ cluster (Deploy/local/rabbitmq-cluster.sh).
up:
	@$(SERVICES) up
	@if [ "$(CLUSTER)" = 3 ]; then Deploy/local/rabbitmq-cluster.sh up; fi

down:
	@Deploy/local/rabbitmq-cluster.sh down 2>/dev/null || true
	@$(SERVICES) down

python-tools:
	@Deploy/local/python-tools.sh

status:
	@$(SERVICES) status

build: up
	$(SWIFT) build

release: up
	$(SWIFT) build -c release

# Fault tests restart RabbitMQ and PostgreSQL, so they run on their own after the other suites.
# The contract check (7–8 minutes on two cores) runs between them, not beside the suites, whose timings a
# busy machine would disturb; it needs the services up, which the fault tests take down and back.
# python-tools installs the independent peers some tests check against (Standard Webhooks) and
# Schemathesis.
test: up python-tools
	@Deploy/local/check-deploy.sh
	$(SWIFT) build --build-tests
	@SWIFT=$(SWIFT) Deploy/local/run-tests.sh --skip-build --skip '^FaultTests\.'
	@SWIFT=$(SWIFT) Deploy/local/contract-check.sh
	@SWIFT=$(SWIFT) Deploy/local/run-tests.sh --skip-build --no-parallel --filter '^FaultTests\.'

# The gateway against its contract, every Schemathesis check (Deploy/local/contract-check.sh).
contract-check: up python-tools
	$(SWIFT) build
	@SWIFT=$(SWIFT) Deploy/local/contract-check.sh

migrate: release
	$(RELEASE_BIN)/mingusctl migrate

run: release
	$(RELEASE_BIN)/mingusctl migrate
	$(RELEASE_BIN)/mingusctl topology declare
	$(RELEASE_BIN)/mingusctl keys init
	@[ -f "$${MINGUS_AUDIT_SIGNING_KEY_PATH:-.services/keys/audit-signing.key}" ] || $(RELEASE_BIN)/mingusctl audit keygen
	@Deploy/local/run-cluster.sh "$(RELEASE_BIN)"

check-deploy: python-tools
	@Deploy/local/check-deploy.sh

# N more workers of one kind on top of `make run` (each picks a free port for its /metrics).
scale: release
	@[ -n "$(KIND)" ] && [ -n "$(N)" ] || { echo "usage: make scale KIND=payments N=4" >&2; exit 2; }
	@MINGUS_METRICS_PORT=0 Deploy/local/run-cluster.sh "$(RELEASE_BIN)" $$(for i in $$(seq $(N)); do echo mingus-$(KIND)-worker; done)

backup: up
	@Deploy/local/backup.sh create $(BACKUP)

restore: release
	@[ -n "$(BACKUP)" ] && [ -n "$(KEY)" ] || { echo "usage: make restore BACKUP=DIR KEY=FILE [PORT=5434]" >&2; exit 2; }
	@MINGUSCTL="$(RELEASE_BIN)/mingusctl" Deploy/local/backup.sh restore "$(BACKUP)" --key-file "$(KEY)" --port "$(or $(PORT),5434)"

bench: release
	$(RELEASE_BIN)/mingusctl migrate
	$(RELEASE_BIN)/mingus-bench

clean:
	rm -rf .build
