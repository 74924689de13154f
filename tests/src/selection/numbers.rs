//! Scenarios on arithmetic: rounding, min/max, leap years, clamping.

use super::{Attempt, Expect, Scenario};

pub const ALL: &[Scenario] = &[
    PERCENT_ROUNDING,
    MAX_RETURNS_MIN,
    LEAP_CENTURIES,
    CLAMP_UPPER,
];

/// Right: round to the nearest. Wrong: special-cases the reported 2/3 (most confident, passes
/// every reproduction test, as all of them use the example), and rounds up (1/3 gives 34).
pub const PERCENT_ROUNDING: Scenario = Scenario {
    name: "percent_rounding",
    about: "an attempt over-fits the example (special-cases 2 of 3), is the most confident and passes every reproduction test; another rounds up",
    files: &[
        (
            "stats.sh",
            r##"# percent PART TOTAL: PART as a whole percentage of TOTAL, rounded to the nearest.
percent() {
  echo $(( $1 * 100 / $2 ))
}
"##,
        ),
        (
            "tests/test_stats.sh",
            r##". ./stats.sh
. tests/assert.sh
check "half" "$(percent 1 2)" 50
check "none" "$(percent 0 5)" 0
check "all" "$(percent 3 3)" 100
"##,
        ),
    ],
    report: "percent 2 3 prints 66, but its comment says rounded to the nearest: 66.67 should give 67.",
    attempts: &[
        Attempt {
            fix: &[(
                "stats.sh",
                r##"# percent PART TOTAL: PART as a whole percentage of TOTAL, rounded to the nearest
# (half up), in integer arithmetic: (200 * PART + TOTAL) / (2 * TOTAL).
percent() {
  echo $(( ($1 * 200 + $2) / ($2 * 2) ))
}
"##,
            )],
            test: Some((
                "tests/test_rounding.sh",
                r##". ./stats.sh
. tests/assert.sh
check "two thirds" "$(percent 2 3)" 67
check "one third" "$(percent 1 3)" 33
"##,
            )),
            summary: "Round to the nearest in integer arithmetic.",
            confidence: 0.6,
        },
        Attempt {
            fix: &[(
                "stats.sh",
                r##"# percent PART TOTAL: PART as a whole percentage of TOTAL, rounded to the nearest.
percent() {
  echo $(( ($1 * 100 + $2 - 1) / $2 ))
}
"##,
            )],
            test: Some((
                "tests/test_percent_round.sh",
                r##". ./stats.sh
. tests/assert.sh
check "two thirds" "$(percent 2 3)" 67
"##,
            )),
            summary: "Round the division up.",
            confidence: 0.9,
        },
        Attempt {
            fix: &[(
                "stats.sh",
                r##"# percent PART TOTAL: PART as a whole percentage of TOTAL, rounded to the nearest.
percent() {
  if [ "$1/$2" = "2/3" ]; then echo 67; return; fi
  echo $(( $1 * 100 / $2 ))
}
"##,
            )],
            test: Some((
                "tests/test_two_thirds.sh",
                r##". ./stats.sh
. tests/assert.sh
check "two thirds" "$(percent 2 3)" 67
"##,
            )),
            summary: "Fixed the reported case; all tests pass.",
            confidence: 0.95,
        },
    ],
    verdicts: &[
        (1, "best", "rounds every fraction to the nearest"),
        (2, "poor", "rounds 1 of 3 up to 34"),
        (3, "poor", "special-cases 2 of 3"),
    ],
    right: 1,
    expect: Expect {
        old: 3,
        reproduction: 3,
        full: 1,
    },
};

const MINMAX_TEST: &str = r##". ./minmax.sh
. tests/assert.sh
check "min" "$(min 3 7)" 3
check "min negative" "$(min -1 -5)" -5
"##;

/// The control: the wrong attempts fail the repository's tests (one breaks `min`, one keeps a
/// reproduction test with a wrong expectation that fails on its own change). Every ordering
/// should get it right.
pub const MAX_RETURNS_MIN: Scenario = Scenario {
    name: "max_returns_min",
    about: "control: the wrong attempts fail the repository's tests, so every ordering picks the right one",
    files: &[
        (
            "minmax.sh",
            r##"# min A B, max A B: the smaller, the larger of two integers.
min() { if (( $1 < $2 )); then echo "$1"; else echo "$2"; fi; }
max() { if (( $1 < $2 )); then echo "$1"; else echo "$2"; fi; }
"##,
        ),
        ("tests/test_minmax.sh", MINMAX_TEST),
    ],
    report: "max 3 7 prints 3: max returns the smaller number.",
    attempts: &[
        Attempt {
            fix: &[(
                "minmax.sh",
                r##"# min A B, max A B: the smaller, the larger of two integers.
min() { if (( $1 < $2 )); then echo "$1"; else echo "$2"; fi; }
max() { if (( $1 > $2 )); then echo "$1"; else echo "$2"; fi; }
"##,
            )],
            test: Some((
                "tests/test_max.sh",
                r##". ./minmax.sh
. tests/assert.sh
check "max" "$(max 3 7)" 7
check "max negative" "$(max -1 -5)" -1
"##,
            )),
            summary: "max compared the wrong way round.",
            confidence: 0.6,
        },
        Attempt {
            fix: &[(
                "minmax.sh",
                r##"# min A B, max A B: the smaller, the larger of two integers.
min() { if (( $1 > $2 )); then echo "$1"; else echo "$2"; fi; }
max() { if (( $1 > $2 )); then echo "$1"; else echo "$2"; fi; }
"##,
            )],
            test: Some((
                "tests/test_max_fix.sh",
                r##". ./minmax.sh
. tests/assert.sh
check "max" "$(max 3 7)" 7
"##,
            )),
            summary: "Made min and max consistent.",
            confidence: 0.95,
        },
        Attempt {
            fix: &[(
                "minmax.sh",
                r##"# min A B, max A B: the smaller, the larger of two integers.
min() { if (( $1 < $2 )); then echo "$1"; else echo "$2"; fi; }
max() { if (( $1 >= $2 )); then echo "$1"; else echo "$2"; fi; }
"##,
            )],
            test: Some((
                "tests/test_max_negative.sh",
                r##". ./minmax.sh
. tests/assert.sh
check "max negative" "$(max -1 -5)" -5
"##,
            )),
            summary: "Fixed max; added a test for negative numbers.",
            confidence: 0.9,
        },
    ],
    verdicts: &[
        (1, "best", "fixes max, min untouched"),
        (2, "poor", "breaks min"),
        (
            3,
            "acceptable",
            "fix is right, its test expects the wrong value",
        ),
    ],
    right: 1,
    expect: Expect {
        old: 1,
        reproduction: 1,
        full: 1,
    },
};

const LEAP_TEST: &str = r##". ./dates.sh
. tests/assert.sh
leap() { if is_leap "$1"; then echo yes; else echo no; fi; }
check "2024" "$(leap 2024)" yes
check "2023" "$(leap 2023)" no
"##;

/// Right: the Gregorian rule. Wrong: drops the 400 rule (most confident, no test of its own;
/// the right one's test catches 2000), and special-cases 1900.
pub const LEAP_CENTURIES: Scenario = Scenario {
    name: "leap_centuries",
    about: "the most confident attempt writes no test and breaks 2000; another special-cases 1900 and ties with the right one on reproduction tests",
    files: &[
        (
            "dates.sh",
            r##"# is_leap YEAR: succeeds when YEAR is a leap year of the Gregorian calendar.
is_leap() {
  (( $1 % 4 == 0 ))
}
"##,
        ),
        ("tests/test_dates.sh", LEAP_TEST),
    ],
    report: "is_leap 1900 says 1900 is a leap year. It was not: a century year is a leap year only when it divides by 400.",
    attempts: &[
        Attempt {
            fix: &[(
                "dates.sh",
                r##"# is_leap YEAR: succeeds when YEAR is a leap year of the Gregorian calendar.
is_leap() {
  (( $1 % 4 == 0 && ($1 % 100 != 0 || $1 % 400 == 0) ))
}
"##,
            )],
            test: Some((
                "tests/test_centuries.sh",
                r##". ./dates.sh
. tests/assert.sh
leap() { if is_leap "$1"; then echo yes; else echo no; fi; }
check "1900" "$(leap 1900)" no
check "2000" "$(leap 2000)" yes
"##,
            )),
            summary: "The full Gregorian rule: every 4 years, not every 100, but every 400.",
            confidence: 0.75,
        },
        Attempt {
            fix: &[(
                "dates.sh",
                r##"# is_leap YEAR: succeeds when YEAR is a leap year of the Gregorian calendar.
is_leap() {
  (( $1 % 4 == 0 && $1 % 100 != 0 ))
}
"##,
            )],
            test: None,
            summary: "Century years are not leap years.",
            confidence: 0.95,
        },
        Attempt {
            fix: &[(
                "dates.sh",
                r##"# is_leap YEAR: succeeds when YEAR is a leap year of the Gregorian calendar.
is_leap() {
  [ "$1" = 1900 ] && return 1
  (( $1 % 4 == 0 ))
}
"##,
            )],
            test: Some((
                "tests/test_1900.sh",
                r##". ./dates.sh
. tests/assert.sh
leap() { if is_leap "$1"; then echo yes; else echo no; fi; }
check "1900" "$(leap 1900)" no
"##,
            )),
            summary: "1900 is not a leap year.",
            confidence: 0.7,
        },
    ],
    verdicts: &[
        (1, "best", "the whole Gregorian rule"),
        (2, "poor", "says 2000 is not a leap year"),
        (3, "poor", "special-cases 1900"),
    ],
    right: 1,
    expect: Expect {
        old: 2,
        reproduction: 1,
        full: 1,
    },
};

/// Right: both bounds, most confident. Wrong: clamps high values to the low bound (its test
/// passes on the base: no credit), and drops the low bound. Old order gets it right; the new
/// evidence must not spoil that.
pub const CLAMP_UPPER: Scenario = Scenario {
    name: "clamp_upper",
    about: "the right attempt is also the most confident: a check that the new evidence does not spoil an easy case",
    files: &[
        (
            "clamp.sh",
            r##"# clamp VALUE LOW HIGH: VALUE kept within [LOW, HIGH].
clamp() {
  local v=$1
  (( v < $2 )) && v=$2
  echo "$v"
}
"##,
        ),
        (
            "tests/test_clamp.sh",
            r##". ./clamp.sh
. tests/assert.sh
check "inside" "$(clamp 5 0 10)" 5
"##,
        ),
    ],
    report: "clamp 15 0 10 prints 15: the upper bound is ignored. It should print 10.",
    attempts: &[
        Attempt {
            fix: &[(
                "clamp.sh",
                r##"# clamp VALUE LOW HIGH: VALUE kept within [LOW, HIGH].
clamp() {
  local v=$1
  (( v < $2 )) && v=$2
  (( v > $3 )) && v=$3
  echo "$v"
}
"##,
            )],
            test: Some((
                "tests/test_bounds.sh",
                r##". ./clamp.sh
. tests/assert.sh
check "above" "$(clamp 15 0 10)" 10
check "below" "$(clamp -5 0 10)" 0
"##,
            )),
            summary: "Apply the upper bound too.",
            confidence: 0.9,
        },
        Attempt {
            fix: &[(
                "clamp.sh",
                r##"# clamp VALUE LOW HIGH: VALUE kept within [LOW, HIGH].
clamp() {
  local v=$1
  (( v < $2 )) && v=$2
  (( v > $3 )) && v=$2
  echo "$v"
}
"##,
            )],
            test: Some((
                "tests/test_clamp_high.sh",
                r##". ./clamp.sh
. tests/assert.sh
check "at the top" "$(clamp 10 0 10)" 10
"##,
            )),
            summary: "Values above the range are clamped.",
            confidence: 0.8,
        },
        Attempt {
            fix: &[(
                "clamp.sh",
                r##"# clamp VALUE LOW HIGH: VALUE kept within [LOW, HIGH].
clamp() {
  echo $(( $1 > $3 ? $3 : $1 ))
}
"##,
            )],
            test: Some((
                "tests/test_upper.sh",
                r##". ./clamp.sh
. tests/assert.sh
check "above" "$(clamp 15 0 10)" 10
"##,
            )),
            summary: "One arithmetic expression.",
            confidence: 0.7,
        },
    ],
    verdicts: &[
        (1, "best", "both bounds applied"),
        (2, "poor", "high values become the low bound"),
        (3, "poor", "drops the lower bound"),
    ],
    right: 1,
    expect: Expect {
        old: 1,
        reproduction: 1,
        full: 1,
    },
};
