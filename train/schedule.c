// schedule.c: see schedule.h.
#include "train/schedule.h"

#include <math.h>

float schedule_lr(const LrSchedule *s, int step) {
    if (step < 0) step = 0;
    if (step < s->warmup) return s->lr * (float)(step + 1) / (float)s->warmup;
    int n = s->max_steps - 1 - s->warmup;
    if (n < 1) n = 1;
    double x = (double)(step - s->warmup) / (double)n;
    if (x > 1.0) x = 1.0;
    return (float)(s->min_lr + (s->lr - s->min_lr) * 0.5 * (1.0 + cos(M_PI * x)));
}
