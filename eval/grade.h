// grade.h: answer extraction and grading for `seer eval` (SPEC.md section 5), and the testbed's
// trace score.
//
// grade_answer(pred, ref) decides whether a model's answer equals the reference after both are
// normalised (grade_normalize), in this order:
//   1. equal as strings;
//   2. choice letters: ref is one letter A..J and pred reduces to that letter ("(B)", "B.",
//      "\text{B}", "B) 42" all give B);
//   3. numbers: both parse as numbers (integers, decimals, 1,234 thousands, \frac{a}{b}, a/b,
//      a leading sign) and |pred - r| <= 1e-4 for r in {ref, ref*100, ref/100};
//   4. unordered lists: either side has a comma outside brackets; both split at such commas into
//      the same number of items, matched one to one (each pair by rules 1 and 3).
// Equivalent LaTeX expressions beyond these rules (symbolic algebra, \sqrt forms, intervals
// written differently) are NOT recognised: such answers count as wrong.
#pragma once

// The content of the last \boxed{...} (or \fbox{...}) of text, braces matched, as a malloc'd
// string; NULL when text has none or the last one is never closed. "\boxed 5" (no brace, up to the
// next space or '$') is accepted too, as in the release's grader.
char *grade_last_boxed(const char *text);

// Normalised form of an answer (malloc'd): every whitespace character and LaTeX spacing command
// (\, \; \: \! "\ ") removed, \left \right \displaystyle removed, \dfrac and \tfrac turned into
// \frac, \text{..} \textbf{..} \mathrm{..} \mbox{..} unwrapped, $ removed, degrees (^\circ,
// ^{\circ}) and percent signs (\%, %) removed, trailing '.' removed, a short "x=" prefix removed.
char *grade_normalize(const char *s);

// 1 when pred (already extracted from the box, or NULL) matches ref by the rules above, else 0.
// NULL or empty pred is never correct.
int grade_answer(const char *pred, const char *ref);

// The testbed's pointer-chasing problems (data/testbed/README.md): the arrows "- src dst" listed
// in the problem, the start key and the number of steps M ("Start at X and follow the arrows M
// times."). Line accuracy of a generated trace: line i (i = 1..M) of the form "- src dst, NN left"
// counts when src equals the start key (i = 1) or the previous line's dst, and dst is the arrow
// target of src. Returns the fraction of the M lines that count (missing lines count as wrong),
// or -1 when the problem is not a pointer-chasing problem (no arrows, no start, or M < 1).
double grade_trace_line_acc(const char *problem, const char *output);
