// cmd_version.c: `seer version`.
#include <stdio.h>
#include <string.h>

#include "common/commands.h"

int cmd_version(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: seer version\n\nPrints the version and whether CUDA kernels are built in.\n");
        return 0;
    }
#ifdef SEER_CUDA
    printf("seer 0.1 (CPU reference + CUDA sm_90a)\n");
#else
    printf("seer 0.1 (CPU reference only: built without nvcc)\n");
#endif
    return 0;
}
