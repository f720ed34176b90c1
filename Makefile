# berth — one Makefile. `make`, `make run`, `make test`, `make bench`, `make fuzz`.
# SANITIZE=address,undefined builds into build-san/ (tests run under it).

CC ?= cc
# The berth executable (server, maintenance commands) links only SERVER_PKGS;
# the client commands are the module berth-client.so (src/plugin.c loads it),
# which links CLIENT_PKGS: `berth serve` never maps libcurl, libarchive and
# the ~30 libraries behind them (docs/internals.md, "Shape"). HTTPS and token
# authentication are the module berth-tls.so (src/tlsmod), which links
# TLS_PKGS and is loaded only when the configuration asks for them.
SERVER_PKGS = jansson sqlite3 yaml-0.1
CLIENT_PKGS = libcurl libarchive jansson yaml-0.1 libcrypto
TLS_PKGS = gnutls libcrypto jansson
PKGS = $(sort $(SERVER_PKGS) $(CLIENT_PKGS) $(TLS_PKGS))
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
SERVER_LIBS := $(shell pkg-config --libs $(SERVER_PKGS) 2>/dev/null) -lpthread
CLIENT_LIBS := $(shell pkg-config --libs $(CLIENT_PKGS) 2>/dev/null) -lpthread
TLS_LIBS := $(shell pkg-config --libs $(TLS_PKGS) 2>/dev/null) -lpthread

WARN = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wwrite-strings \
       -Wvla -Wformat=2 -Wimplicit-fallthrough -fno-common
ifdef WERROR
WARN += -Werror
endif
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(PKG_CFLAGS) -Isrc -MMD -MP
# unit tests and fuzz replays link everything (lib.a holds server and client)
LIBS = $(PKG_LIBS) -lcrypt -lpthread

# Short build lines; `make V=1` prints the full commands.
ifndef V
Q = @
E = @echo
else
E = @true
endif

ifdef SANITIZE
BUILD ?= build-san
ALL_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
else
BUILD ?= build
endif

SHARED_SRC := src/cli.c $(sort $(wildcard src/core/*.c))
# The TLS module's code (GnuTLS, libcrypto). The executable has instead
# src/tlsmod/host.c, which forwards their APIs through the module's ops table.
TLS_SRC := src/server/jwt.c src/server/selfsign.c src/server/tls.c
SERVER_SRC := $(SHARED_SRC) $(filter-out $(TLS_SRC),$(sort $(wildcard src/store/*.c src/server/*.c)))
CLIENT_SRC := $(sort $(wildcard src/client/*.c))
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o)
HOST_OBJ := $(BUILD)/src/tlsmod/host.o
# Built position-independent once, for berth-tls.so and for lib.a. The module
# adds its ops table and its own PIC copy of the core pieces the code uses
# (policy.c's scope parser, error, oci, name: taken from pic/core.a).
TLS_OBJ := $(TLS_SRC:%.c=$(BUILD)/pic/%.o)
TLSMOD_OBJ := $(TLS_OBJ) $(BUILD)/pic/src/tlsmod/module.o $(BUILD)/pic/src/server/policy.o
# Client objects are built position-independent (under $(BUILD)/pic/) once, for
# the module and for lib.a; the module carries its own PIC copy of src/core
# and src/cli.c.
CLIENT_OBJ := $(CLIENT_SRC:%.c=$(BUILD)/pic/%.o)
MODULE_OBJ := $(SHARED_SRC:%.c=$(BUILD)/pic/%.o) $(CLIENT_OBJ)
OBJ := $(SERVER_OBJ) $(TLS_OBJ) $(CLIENT_OBJ)
MAIN_OBJ := $(BUILD)/src/main.o $(BUILD)/src/plugin.o $(HOST_OBJ)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_REPLAY := $(FUZZ_SRC:fuzz/%.c=$(BUILD)/fuzz/%-replay)

.PHONY: all deps install unit run test fuzz bench bench-quick clean
all: $(BUILD)/berth $(BUILD)/berth-client.so $(BUILD)/berth-tls.so

deps:
	@scripts/deps.sh build

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(E) "  CC      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(E) "  CC      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -fPIC -c -o $@ $<

$(BUILD)/berth: $(MAIN_OBJ) $(SERVER_OBJ)
	$(E) "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(SERVER_LIBS)

# Exports only cmd_* and berth_client_version (src/client.ver); -z defs: every
# symbol the client needs is in the module or its libraries, none is taken
# from the executable.
$(BUILD)/berth-client.so: $(MODULE_OBJ) src/client.ver
	$(E) "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) -shared -Wl,-z,defs -Wl,-Bsymbolic -Wl,--version-script=src/client.ver \
		-o $@ $(MODULE_OBJ) $(CLIENT_LIBS)

# Exports only the ops table berth_tls_module_v1 (src/tlsmod.ver); -z defs as
# for the client module: it takes no symbol from the executable.
$(BUILD)/pic/core.a: $(SHARED_SRC:%.c=$(BUILD)/pic/%.o)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/berth-tls.so: $(TLSMOD_OBJ) $(BUILD)/pic/core.a src/tlsmod.ver
	$(E) "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) -shared -Wl,-z,defs -Wl,-Bsymbolic -Wl,--version-script=src/tlsmod.ver \
		-o $@ $(TLSMOD_OBJ) $(BUILD)/pic/core.a $(TLS_LIBS)

$(BUILD)/lib.a: $(OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/lib.a
	@mkdir -p $(dir $@)
	$(E) "  TEST    $@"
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/lib.a $(LIBS) -lcmocka

# Fuzz targets replayed over their corpora with a plain main() (gcc, no libFuzzer).
$(BUILD)/fuzz/%-replay: fuzz/%.c fuzz/replay.c $(BUILD)/lib.a
	@mkdir -p $(dir $@)
	$(E) "  FUZZ    $@"
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< fuzz/replay.c $(BUILD)/lib.a $(LIBS)

unit: $(UNIT_BIN) $(FUZZ_REPLAY)

# make install [PREFIX=/usr/local] [DESTDIR=...]: the command and, where it
# looks for them (src/plugin.c), the client and TLS modules.
PREFIX ?= /usr/local
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/berth
	install -m 755 $(BUILD)/berth $(DESTDIR)$(PREFIX)/bin/berth
	install -m 644 $(BUILD)/berth-client.so $(DESTDIR)$(PREFIX)/lib/berth/berth-client.so
	install -m 644 $(BUILD)/berth-tls.so $(DESTDIR)$(PREFIX)/lib/berth/berth-tls.so

run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p var/berth
	./$(BUILD)/berth serve --addr 0.0.0.0:5000 --root ./var/berth

# make test: install, build normal and ASan+UBSan, unit + fuzz replay + e2e,
# one summary line at the end.
test:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory WERROR=1 all unit
	@$(MAKE) --no-print-directory WERROR=1 SANITIZE=address,undefined all unit
	@scripts/run-tests.sh

fuzz:
	@scripts/fuzz.sh $(FUZZ_TIME)

# The bench runs $(BUILD)/berth (make BUILD=build-x bench-quick), or $BERTH.
bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory all
	@BERTH="$${BERTH:-$(CURDIR)/$(BUILD)/berth}" bench/run.sh full

bench-quick:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory all
	@BERTH="$${BERTH:-$(CURDIR)/$(BUILD)/berth}" bench/run.sh quick

# make soak: concurrent clients for SOAK_SECONDS (default 600), then a full
# consistency check (scripts/soak.sh).
.PHONY: soak
soak:
	@$(MAKE) --no-print-directory all
	@scripts/soak.sh

clean:
	rm -rf build build-san build-fuzz

-include $(OBJ:.o=.d) $(MODULE_OBJ:.o=.d) $(TLSMOD_OBJ:.o=.d) $(MAIN_OBJ:.o=.d) $(UNIT_BIN:=.d) $(FUZZ_REPLAY:=.d)
