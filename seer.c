// seer.c: the `seer` command: dispatches to one subcommand per job.
#include <stdio.h>
#include <string.h>

#include "common/commands.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);  // argv[0] is the subcommand name
    const char *summary;
} Command;

static const Command commands[] = {
    {"bench", cmd_bench, "time kernels and passes against baselines (seer bench --help)"},
    {"data", cmd_data, "JSONL traces to packed, shuffled HDF5 token shards for training"},
    {"demo", cmd_demo, "the whole pipeline on the small testbed model, a few minutes on a CPU"},
    {"eval", cmd_eval, "generate, grade and report with dense / gate / oracle / Quest attention (CPU)"},
    {"export", cmd_export, "write a run's gates as a SeerAttention gate folder (.safetensors + .pth)"},
    {"forward", cmd_forward, "top next tokens of a Hugging Face model on token ids (CPU reference)"},
    {"recall", cmd_recall, "attention recall of gates vs Quest vs oracle on held-out chunks"},
    {"tokenize", cmd_tokenize, "JSON lines of text or chat messages to token ids, and back (--decode)"},
    {"train", cmd_train, "distil the attention gates of a frozen model on token shards (resumable)"},
    {"version", cmd_version, "print the version and the backends this binary was built with"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: seer <command> [options]   (seer <command> --help for details)\n\n"
               "SeerAttention-R in C and CUDA: distil attention gates for a frozen model,\n"
               "export them, and decode with block-sparse attention.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "seer: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
