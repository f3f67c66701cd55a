# seer: one binary with subcommands. `make` builds it (with the CUDA kernels when nvcc is found),
# `make test` runs the CPU test suite, `make test-gpu` the GPU-vs-CPU tests (needs a GPU),
# `make sanitize-gpu` the same tests under compute-sanitizer (memcheck; racecheck/synccheck on decode/select),
# `make setup` installs the Debian packages the build needs (idempotent; every build runs it once).

BUILD ?= build
NVCC  ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))

CC      ?= gcc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -fopenmp -I. -I/usr/include/hdf5/serial
NVFLAGS ?= -O3 -g -lineinfo
NVFLAGS += -std=c++17 -I. -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=compute_90

# jansson, PCRE2 and utf8proc are linked statically where the archives exist, so the binary runs
# on machines that have only the shared HDF5 / zlib / CUDA libraries (see docs/DEVICE.md).
LIBDIR  := /usr/lib/x86_64-linux-gnu
static_or_shared = $(if $(wildcard $(LIBDIR)/lib$(1).a),$(LIBDIR)/lib$(1).a,-l$(1))
LDLIBS  := $(call static_or_shared,jansson) $(call static_or_shared,pcre2-8) \
           $(call static_or_shared,utf8proc) -lhdf5_serial -lz -lm -lpthread
LDFLAGS += -fopenmp -L$(LIBDIR)/hdf5/serial

SRC_DIRS := common ckpt model data kernels train eval bench
C_SRC    := $(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.c))
CU_SRC   := $(if $(NVCC),$(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.cu)))
OBJ      := $(C_SRC:%.c=$(BUILD)/%.o) $(CU_SRC:%.cu=$(BUILD)/%.cu.o)

ifneq ($(NVCC),)
CFLAGS  += -DSEER_CUDA -I$(CUDA_HOME)/include
NVFLAGS += -DSEER_CUDA
LDLIBS  += -L$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart_static -ldl -lrt -lstdc++
endif

TESTS     := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_*.c))
GPU_TESTS := $(if $(NVCC),$(patsubst tests/gpu/%.c,$(BUILD)/tests/gpu/%,$(wildcard tests/gpu/test_*.c)))

.PHONY: all test test-gpu sanitize-gpu setup clean demo
all: $(BUILD)/seer $(TESTS) $(GPU_TESTS)

$(BUILD)/seer: seer.c $(BUILD)/libseer.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/libseer.a: $(OBJ)
	@rm -f $@
	ar rcs $@ $^

# Installing the build dependencies comes first on a fresh machine (a stamp keeps it to one check).
$(BUILD)/.setup: tests/setup.sh
	@mkdir -p $(BUILD)
	@bash tests/setup.sh
	@touch $@

$(BUILD)/%.o: %.c | $(BUILD)/.setup
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/%.cu.o: %.cu | $(BUILD)/.setup
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/%.c $(BUILD)/libseer.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

test: $(BUILD)/seer $(TESTS)
	@tests/run.sh $(TESTS)

test-gpu: $(BUILD)/seer $(GPU_TESTS)
	@tests/run.sh $(GPU_TESTS)

sanitize-gpu: $(GPU_TESTS)
	@tests/sanitize_gpu.sh $(GPU_TESTS)

demo: $(BUILD)/seer
	$(BUILD)/seer demo

setup:
	@bash tests/setup.sh

clean:
	rm -rf $(BUILD)

-include $(OBJ:.o=.d)
