# swapfs build, test and install. "make help" lists the targets.

GO       ?= go
# The test recipe uses pipefail.
SHELL    := /bin/bash
PREFIX   ?= /usr/local
DESTDIR  ?=
SBINDIR  ?= /sbin
BIN      := bin/swapfs
# make run: where the demo store lives and where it is mounted.
STORE    ?= $(CURDIR)/.swapfs-store
MNT      ?= /mnt/swapfs
FUZZTIME ?= 10s
# make bench: flags for cmd/swapbench, e.g. BENCHFLAGS="-quick" or "-only swap -rounds 5".
BENCHFLAGS ?=

.PHONY: help build test vet install uninstall run stop fuzz soak bench clean

help:
	@echo "make build      build $(BIN)"
	@echo "make test       everything: gofmt + vet, unit and integration tests (-race on meta, fs, swap), as root"
	@echo "make run        build and mount a store in $(STORE) on $(MNT) (as root); make stop unmounts"
	@echo "make install    install to \$$DESTDIR\$$PREFIX/bin, with mount.swapfs and mount.fuse.swapfs in $(SBINDIR)"
	@echo "make fuzz       run each FuzzXxx target for $(FUZZTIME)"
	@echo "make soak       long tests: pressure rounds with churn, a crash loop; SOAKTIME=30m each (root)"
	@echo "make bench      benchmarks against native/loop/go-fuse references -> docs/benchmarks.md (root; BENCHFLAGS=-quick)"
	@echo "make vet        gofmt -l must be empty, then go vet"
	@echo "make clean      remove build output (never a store)"

build:
	$(GO) build -o $(BIN) ./cmd/swapfs

vet:
	@out=$$(gofmt -l $$($(GO) list -f '{{.Dir}}' ./...)); \
	if [ -n "$$out" ]; then echo "gofmt: these files need 'gofmt -w':"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags soak ./integration/

# test runs every step even after one fails, then prints a summary; it fails if any step did.
# meta, fs and swap run with -race (they are concurrent) and meta once more with GOMAXPROCS=1;
# everything else (cmd, integration: real mounts, needs root and /dev/fuse) runs once.
# Tests run with -v so that every skipped test shows its reason; gotest drops the RUN and
# PASS lines that -v adds, and keeps logs, skips and failures.
test:
	@status=0; summary=""; \
	step() { name="$$1"; shift; echo; echo "=== $$name"; echo "+ $$*"; t0=$$(date +%s); \
		if "$$@"; then r=ok; else r=FAIL; status=1; fi; \
		summary="$$summary$$(printf '  %-4s  %-40s %5ss' "$$r" "$$name" "$$(( $$(date +%s) - t0 ))")\n"; }; \
	gotest() { set -o pipefail; $(GO) test -v "$$@" 2>&1 | \
		{ grep -vE '^(=== (RUN|PAUSE|CONT|NAME) |[[:space:]]*--- PASS: )' || true; }; }; \
	others=$$($(GO) list ./... | grep -v -e '/meta$$' -e '/fs$$' -e '/swap$$'); \
	step "gofmt + go vet" $(MAKE) --no-print-directory vet; \
	step "meta, fs, swap with -race" gotest -count=1 -race -timeout 6m ./meta/... ./fs/... ./swap/; \
	onecpu() { ( export GOMAXPROCS=1; "$$@" ); }; \
	step "meta with GOMAXPROCS=1" onecpu gotest -count=1 -timeout 4m ./meta/...; \
	step "cmd, integration and the rest" gotest -count=1 -timeout 12m $$others; \
	echo; echo "=== summary"; printf "$$summary"; \
	if [ "$$(id -u)" != 0 ] || [ ! -w /dev/fuse ]; then \
		echo "  note: not root or no /dev/fuse: the integration tests were skipped"; fi; \
	if [ $$status -eq 0 ]; then echo "make test: PASS"; else echo "make test: FAIL (see the steps above)"; fi; \
	exit $$status

install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SBINDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/swapfs
	ln -sf $(PREFIX)/bin/swapfs $(DESTDIR)$(SBINDIR)/mount.swapfs
	ln -sf $(PREFIX)/bin/swapfs $(DESTDIR)$(SBINDIR)/mount.fuse.swapfs

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/swapfs $(DESTDIR)$(SBINDIR)/mount.swapfs $(DESTDIR)$(SBINDIR)/mount.fuse.swapfs

run: build
	@if [ "$$(id -u)" != 0 ]; then echo "make run: mounting needs root; try 'sudo make run'"; exit 1; fi; \
	if grep -q " $(MNT) fuse.swapfs " /proc/mounts; then \
		echo "swapfs is already mounted on $(MNT); 'make stop' unmounts it"; exit 0; fi; \
	set -e; mkdir -p $(MNT); \
	echo "+ $(BIN) mount $(STORE) $(MNT)"; $(BIN) mount $(STORE) $(MNT); \
	echo; \
	echo "swapfs is mounted on $(MNT) (store: $(STORE)). Next:"; \
	echo "  df -h $(MNT); echo hello > $(MNT)/hello; ls -l $(MNT)"; \
	echo "  unmount:      make stop      (or: umount $(MNT))"; \
	echo "  check store:  $(BIN) fsck $(STORE)   (after unmounting)"

stop:
	umount $(MNT)

fuzz:
	@found=0; \
	for f in $$(grep -l '^func Fuzz' $$(find . -name '*_test.go' -not -path './.*')); do \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			found=1; echo "=== $$t in ./$$(dirname $${f#./}) for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) ./$$(dirname $${f#./}) || exit 1; \
		done; \
	done; \
	if [ $$found -eq 0 ]; then echo "make fuzz: no FuzzXxx targets yet"; fi

# soak runs the long tests (integration/soak_test.go: pressure rounds with file churn, a
# crash loop), each for SOAKTIME; as root.
SOAKTIME ?= 30m
soak:
	SWAPFS_SOAK=1 SWAPFS_SOAK_DURATION=$(SOAKTIME) $(GO) test -tags soak -count=1 -timeout 6h -run 'Soak' -v ./integration/

# bench measures swapfs against references on the same disk (installs fio if missing) and
# writes docs/benchmarks.md; as root, about 20 minutes (BENCHFLAGS=-quick: a few).
bench:
	@if [ "$$(id -u)" != 0 ]; then echo "make bench: needs root (mounts, loop devices, swapon, cgroups); try 'sudo make bench'"; exit 1; fi
	$(GO) build -o bin/swapbench ./cmd/swapbench
	GO=$(GO) bin/swapbench $(BENCHFLAGS)

clean:
	rm -rf bin
