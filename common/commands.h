// commands.h: the entry point of every subcommand (argv[0] is the subcommand name).
// Each returns the process exit status. The table in seer.c lists them.
#pragma once

int cmd_version(int argc, char **argv);  // common/cmd_version.c
int cmd_bench(int argc, char **argv);    // bench/cmd_bench.c
int cmd_forward(int argc, char **argv);  // model/cmd_forward.c
int cmd_tokenize(int argc, char **argv);  // data/cmd_tokenize.c
int cmd_data(int argc, char **argv);      // data/cmd_data.c
int cmd_train(int argc, char **argv);     // train/cmd_train.c
int cmd_export(int argc, char **argv);    // ckpt/cmd_export.c
int cmd_recall(int argc, char **argv);    // eval/cmd_recall.c
int cmd_demo(int argc, char **argv);      // eval/cmd_demo.c
int cmd_eval(int argc, char **argv);      // eval/cmd_eval.c
