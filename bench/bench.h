// bench.h: the `seer bench <what>` subcommands (each gets argv[0] = <what>).
#pragma once

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} BenchCommand;
