//! Scenarios on text functions: slugs, joining, log lines, titles.

use super::{Attempt, Expect, Scenario};

pub const ALL: &[Scenario] = &[
    SLUG_SPACE_RUNS,
    JOIN_LONG_SEPARATOR,
    LOG_LEVEL_CASE,
    TITLE_EVERY_WORD,
];

const SLUG_TEST: &str = r##". ./slug.sh
. tests/assert.sh
check "one space" "$(slugify 'Hello World')" "hello-world"
check "dashes kept" "$(slugify 'pre-release notes')" "pre-release-notes"
"##;

/// Right: a run of spaces is one dash. Wrong: a one-liner that halves runs of spaces (most
/// confident, smallest; fails three spaces), and `tr -s` that also squeezes dashes already in
/// the text (tests cannot see it: only the judge can).
pub const SLUG_SPACE_RUNS: Scenario = Scenario {
    name: "slug_space_runs",
    about: "right fix vs a smaller one-liner that only handles two spaces (most confident) and a fix that also squeezes dashes already in the text",
    files: &[
        (
            "slug.sh",
            r##"# slugify TEXT: the text in lower case, words joined by '-'.
slugify() {
  local s="${1,,}"
  s="${s// /-}"
  echo "$s"
}
"##,
        ),
        ("tests/test_slug.sh", SLUG_TEST),
    ],
    report: "slugify 'Release  Notes   2024' prints 'release--notes---2024'. A run of spaces should give one dash: 'release-notes-2024'.",
    attempts: &[
        Attempt {
            fix: &[(
                "slug.sh",
                r##"shopt -s extglob
# slugify TEXT: the text in lower case, words joined by '-'; a run of spaces is one '-'.
slugify() {
  local s="${1,,}"
  s="${s//+( )/-}"
  echo "$s"
}
"##,
            )],
            test: Some((
                "tests/test_space_runs.sh",
                r##". ./slug.sh
. tests/assert.sh
check "runs of spaces" "$(slugify 'Release  Notes   2024')" "release-notes-2024"
"##,
            )),
            summary: "A run of spaces now becomes one dash (an extglob pattern).",
            confidence: 0.7,
        },
        Attempt {
            fix: &[(
                "slug.sh",
                r##"# slugify TEXT: the text in lower case, words joined by '-'.
slugify() {
  local s="${1,,}"
  s="${s//  / }"
  s="${s// /-}"
  echo "$s"
}
"##,
            )],
            test: Some((
                "tests/test_double_space.sh",
                r##". ./slug.sh
. tests/assert.sh
check "double space" "$(slugify 'a  b')" "a-b"
"##,
            )),
            summary: "Collapse double spaces before replacing. One line.",
            confidence: 0.95,
        },
        Attempt {
            fix: &[(
                "slug.sh",
                r##"# slugify TEXT: the text in lower case, words joined by '-'.
slugify() {
  local s="${1,,}"
  s="$(printf '%s' "$s" | tr -s ' ' '-')"
  echo "$s"
}
"##,
            )],
            test: Some((
                "tests/test_slug_spaces.sh",
                r##". ./slug.sh
. tests/assert.sh
check "reported" "$(slugify 'Release  Notes   2024')" "release-notes-2024"
"##,
            )),
            summary: "Use `tr -s` to translate and squeeze.",
            confidence: 0.9,
        },
    ],
    verdicts: &[
        (
            1,
            "best",
            "one dash per run of spaces, nothing else changes",
        ),
        (2, "poor", "three spaces still give two dashes"),
        (3, "poor", "also squeezes dashes already in the text"),
    ],
    right: 1,
    expect: Expect {
        old: 2,
        reproduction: 3,
        full: 1,
    },
};

/// Right: a separator of any length. Wrong: a no-op whose test passes on the base (most
/// confident, no credit), and a fix that splits items containing spaces (the reported case).
pub const JOIN_LONG_SEPARATOR: Scenario = Scenario {
    name: "join_long_separator",
    about: "a no-op whose reproduction test passes on the base (most confident) and a fix that breaks the reported case while passing its own test",
    files: &[
        (
            "join.sh",
            r##"# join_by SEP ITEM...: the items joined by SEP.
join_by() {
  local IFS="$1"
  shift
  echo "$*"
}
"##,
        ),
        (
            "tests/test_join.sh",
            r##". ./join.sh
. tests/assert.sh
check "comma" "$(join_by , a b c)" "a,b,c"
check "one item" "$(join_by - x)" "x"
"##,
        ),
    ],
    report: "join_by ', ' 'New York' Paris prints 'New York,Paris': only the first character of the separator is used. Expected 'New York, Paris'.",
    attempts: &[
        Attempt {
            fix: &[(
                "join.sh",
                r##"# join_by SEP ITEM...: the items joined by SEP (of any length).
join_by() {
  local sep="$1" out item
  shift
  [ $# -gt 0 ] || { echo; return; }
  out="$1"
  shift
  for item in "$@"; do out+="$sep$item"; done
  echo "$out"
}
"##,
            )],
            test: Some((
                "tests/test_long_separator.sh",
                r##". ./join.sh
. tests/assert.sh
check "reported" "$(join_by ', ' 'New York' Paris)" "New York, Paris"
"##,
            )),
            summary: "join_by builds the string itself, so the separator may have any length.",
            confidence: 0.6,
        },
        Attempt {
            fix: &[(
                "join.sh",
                r##"# join_by SEP ITEM...: the items joined by SEP.
join_by() {
  local IFS="$1"
  shift
  printf '%s\n' "$*"
}
"##,
            )],
            test: Some((
                "tests/test_join_items.sh",
                r##". ./join.sh
. tests/assert.sh
check "joined" "$(join_by , x y)" "x,y"
"##,
            )),
            summary: "Print with printf instead of echo; the new test passes.",
            confidence: 0.95,
        },
        Attempt {
            fix: &[(
                "join.sh",
                r##"# join_by SEP ITEM...: the items joined by SEP.
join_by() {
  local sep="$1"
  shift
  local s="$*"
  echo "${s// /$sep}"
}
"##,
            )],
            test: Some((
                "tests/test_separator.sh",
                r##". ./join.sh
. tests/assert.sh
check "two characters" "$(join_by ', ' a b)" "a, b"
"##,
            )),
            summary: "Join with spaces, then replace them with the separator.",
            confidence: 0.8,
        },
    ],
    verdicts: &[
        (1, "best", "any separator, items kept whole"),
        (2, "poor", "changes nothing"),
        (3, "poor", "splits items that contain spaces"),
    ],
    right: 1,
    expect: Expect {
        old: 2,
        reproduction: 1,
        full: 1,
    },
};

/// Right: the level in upper case. Wrong: printf that splits a message given as several words
/// over two lines (no test passes words unquoted), and a level cut to four letters (ERRO).
pub const LOG_LEVEL_CASE: Scenario = Scenario {
    name: "log_level_case",
    about: "a fix that changes unrelated behaviour (unquoted messages print on two lines) no test can see, most confident; only the judge separates it",
    files: &[
        (
            "log.sh",
            r##"# log_line LEVEL WORD...: "[LEVEL] message".
log_line() {
  echo "[$1] ${*:2}"
}
"##,
        ),
        (
            "tests/test_log.sh",
            r##". ./log.sh
. tests/assert.sh
check "info" "$(log_line INFO 'started')" "[INFO] started"
"##,
        ),
    ],
    report: "log_line warn 'disk full' prints '[warn] disk full'; levels must be upper case: '[WARN] disk full'. The same goes for error.",
    attempts: &[
        Attempt {
            fix: &[(
                "log.sh",
                r##"# log_line LEVEL WORD...: "[LEVEL] message", the level in upper case.
log_line() {
  echo "[${1^^}] ${*:2}"
}
"##,
            )],
            test: Some((
                "tests/test_level_case.sh",
                r##". ./log.sh
. tests/assert.sh
check "warn" "$(log_line warn 'disk full')" "[WARN] disk full"
"##,
            )),
            summary: "The level is upper-cased.",
            confidence: 0.7,
        },
        Attempt {
            fix: &[(
                "log.sh",
                r##"# log_line LEVEL MESSAGE: "[LEVEL] message".
log_line() {
  printf '[%s] %s\n' "${1^^}" "$2"
}
"##,
            )],
            test: Some((
                "tests/test_upper.sh",
                r##". ./log.sh
. tests/assert.sh
check "error" "$(log_line error boom)" "[ERROR] boom"
"##,
            )),
            summary: "Use printf with an upper-cased level: cleaner and safer than echo.",
            confidence: 0.9,
        },
        Attempt {
            fix: &[(
                "log.sh",
                r##"# log_line LEVEL WORD...: "[LEVL] message", four-letter level.
log_line() {
  local level="${1^^}"
  echo "[${level:0:4}] ${*:2}"
}
"##,
            )],
            test: Some((
                "tests/test_warn.sh",
                r##". ./log.sh
. tests/assert.sh
check "warn" "$(log_line warn x)" "[WARN] x"
"##,
            )),
            summary: "Upper-case the level, aligned to four letters.",
            confidence: 0.8,
        },
    ],
    verdicts: &[
        (1, "best", "upper-cases the level and nothing else"),
        (2, "poor", "a message of several words prints on two lines"),
        (3, "poor", "cuts ERROR to ERRO"),
    ],
    right: 1,
    expect: Expect {
        old: 2,
        reproduction: 2,
        full: 1,
    },
};

/// Right: every word capitalised, as the report and the comment say. Wrong: two attempts that
/// apply title-case style (small words kept lower) and test that misreading: their tests
/// outvote the right one's, and the judge is asked only between the two of them.
pub const TITLE_EVERY_WORD: Scenario = Scenario {
    name: "title_every_word",
    about: "two attempts share a misreading of the report and their reproduction tests outvote the right one; the judge only sees the tied wrong pair",
    files: &[
        (
            "title.sh",
            r##"# title_case TEXT: every word capitalised.
title_case() {
  echo "${1^}"
}
"##,
        ),
        (
            "tests/test_title.sh",
            r##". ./title.sh
. tests/assert.sh
check "one word" "$(title_case hello)" "Hello"
"##,
        ),
    ],
    report: "title_case 'the lord of the rings' prints 'The lord of the rings'. As its comment says, every word should be capitalised: 'The Lord Of The Rings'.",
    attempts: &[
        Attempt {
            fix: &[(
                "title.sh",
                r##"# title_case TEXT: every word capitalised.
title_case() {
  local out="" word
  for word in $1; do out+="${word^} "; done
  echo "${out% }"
}
"##,
            )],
            test: Some((
                "tests/test_every_word.sh",
                r##". ./title.sh
. tests/assert.sh
check "every word" "$(title_case 'the lord of the rings')" "The Lord Of The Rings"
"##,
            )),
            summary: "Capitalise every word, as the comment says.",
            confidence: 0.85,
        },
        Attempt {
            fix: &[(
                "title.sh",
                r##"# title_case TEXT: words capitalised, short function words in lower case (but the first).
title_case() {
  local out="" word
  for word in $1; do
    case "$word" in
      a|an|and|of|or|the|in|on|to) [ -n "$out" ] && { out+="$word "; continue; } ;;
    esac
    out+="${word^} "
  done
  echo "${out% }"
}
"##,
            )],
            test: Some((
                "tests/test_title_style.sh",
                r##". ./title.sh
. tests/assert.sh
check "title style" "$(title_case 'the lord of the rings')" "The Lord of the Rings"
"##,
            )),
            summary: "Proper title case: small words stay lower case.",
            confidence: 0.8,
        },
        Attempt {
            fix: &[(
                "title.sh",
                r##"# title_case TEXT: words capitalised, but a, of, the after the first.
title_case() {
  local out="" word
  for word in $1; do
    if [ -n "$out" ]; then
      case "$word" in a|of|the) out+=" $word"; continue ;; esac
      out+=" "
    fi
    out+="${word^}"
  done
  echo "$out"
}
"##,
            )],
            test: Some((
                "tests/test_small_words.sh",
                r##". ./title.sh
. tests/assert.sh
check "small words" "$(title_case 'the lord of the rings')" "The Lord of the Rings"
check "article first" "$(title_case 'a tale of two cities')" "A Tale of Two Cities"
"##,
            )),
            summary: "Title case with articles kept lower case.",
            confidence: 0.7,
        },
    ],
    verdicts: &[
        (1, "best", "capitalises every word, as asked"),
        (
            2,
            "acceptable",
            "title-case style, not what the report asks",
        ),
        (
            3,
            "acceptable",
            "title-case style, not what the report asks",
        ),
    ],
    right: 1,
    expect: Expect {
        old: 1,
        reproduction: 2,
        full: 2,
    },
};
