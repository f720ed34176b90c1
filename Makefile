# berth — one Makefile. `make`, `make run`, `make test`, `make bench`, `make fuzz`.
# SANITIZE=address,undefined builds into build-san/ (tests run under it).

CC ?= cc
PKGS = libmicrohttpd jansson sqlite3 yaml-0.1 libcrypto libcurl libarchive gnutls
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wwrite-strings \
       -Wvla -Wformat=2 -Wimplicit-fallthrough -fno-common
ifdef WERROR
WARN += -Werror
endif
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(PKG_CFLAGS) -Isrc -MMD -MP
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

SRC := src/cli.c $(sort $(wildcard src/core/*.c src/store/*.c src/server/*.c src/client/*.c))
OBJ := $(SRC:%.c=$(BUILD)/%.o)
MAIN_OBJ := $(BUILD)/src/main.o
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_REPLAY := $(FUZZ_SRC:fuzz/%.c=$(BUILD)/fuzz/%-replay)

.PHONY: all deps unit run test fuzz bench bench-quick clean
all: $(BUILD)/berth

deps:
	@scripts/deps.sh build

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(E) "  CC      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/berth: $(MAIN_OBJ) $(OBJ)
	$(E) "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

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

bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory all
	@bench/run.sh full

bench-quick:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory all
	@bench/run.sh quick

# make soak: concurrent clients for SOAK_SECONDS (default 600), then a full
# consistency check (scripts/soak.sh).
.PHONY: soak
soak:
	@$(MAKE) --no-print-directory all
	@scripts/soak.sh

clean:
	rm -rf build build-san build-fuzz

-include $(OBJ:.o=.d) $(MAIN_OBJ:.o=.d) $(UNIT_BIN:=.d) $(FUZZ_REPLAY:=.d)
