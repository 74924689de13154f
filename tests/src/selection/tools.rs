//! Scenarios on small shell tools: file extensions, word counts, de-duplication, repetition.

use super::{Attempt, Expect, Scenario};

pub const ALL: &[Scenario] = &[
    EXT_NO_EXTENSION,
    COUNT_WORDS_TWO_INPUTS,
    DEDUPE_ORDER,
    REPEAT_SAME_TEST_PATH,
];

/// Right: both reported inputs. Wrong: two attempts fix one of the two each (the most
/// confident one fixes `Makefile` only), and a fourth special-cases the two reported names: it
/// passes every reproduction test, as the right one does, and is more confident.
pub const EXT_NO_EXTENSION: Scenario = Scenario {
    name: "ext_no_extension",
    about: "two reported inputs, four attempts: the most confident fixes only the first, another only the second, a third special-cases both names and ties with the right one on reproduction tests",
    files: &[
        (
            "paths.sh",
            r##"# ext NAME: the extension of a file name ("pdf" for "report.pdf"), empty when it has none.
ext() {
  echo "${1##*.}"
}
"##,
        ),
        (
            "tests/test_paths.sh",
            r##". ./paths.sh
. tests/assert.sh
check "pdf" "$(ext report.pdf)" pdf
check "last dot" "$(ext a.b.c)" c
"##,
        ),
    ],
    report: "ext Makefile prints 'Makefile' and ext .bashrc prints 'bashrc'. Neither has an extension: both should print nothing.",
    attempts: &[
        Attempt {
            fix: &[(
                "paths.sh",
                r##"# ext NAME: the extension of a file name ("pdf" for "report.pdf"), empty when it has none.
# A leading dot starts a hidden file's name, not an extension.
ext() {
  local name="${1##*/}"
  name="${name#.}"
  case "$name" in
    *.*) echo "${name##*.}" ;;
    *) echo ;;
  esac
}
"##,
            )],
            test: Some((
                "tests/test_no_extension.sh",
                r##". ./paths.sh
. tests/assert.sh
check "Makefile" "$(ext Makefile)" ""
check ".bashrc" "$(ext .bashrc)" ""
"##,
            )),
            summary: "No dot, or only a leading one: no extension.",
            confidence: 0.65,
        },
        Attempt {
            fix: &[(
                "paths.sh",
                r##"# ext NAME: the extension of a file name ("pdf" for "report.pdf"), empty when it has none.
ext() {
  case "$1" in *.*) echo "${1##*.}" ;; *) echo ;; esac
}
"##,
            )],
            test: Some((
                "tests/test_makefile.sh",
                r##". ./paths.sh
. tests/assert.sh
check "Makefile" "$(ext Makefile)" ""
"##,
            )),
            summary: "Names without a dot have no extension.",
            confidence: 0.9,
        },
        Attempt {
            fix: &[(
                "paths.sh",
                r##"# ext NAME: the extension of a file name ("pdf" for "report.pdf"), empty when it has none.
ext() {
  case "$1" in
    .*.*) echo "${1##*.}" ;;
    .*) echo ;;
    *) echo "${1##*.}" ;;
  esac
}
"##,
            )],
            test: Some((
                "tests/test_hidden.sh",
                r##". ./paths.sh
. tests/assert.sh
check ".bashrc" "$(ext .bashrc)" ""
"##,
            )),
            summary: "Hidden files have no extension.",
            confidence: 0.8,
        },
        Attempt {
            fix: &[(
                "paths.sh",
                r##"# ext NAME: the extension of a file name ("pdf" for "report.pdf"), empty when it has none.
ext() {
  case "$1" in Makefile|.bashrc) echo; return ;; esac
  echo "${1##*.}"
}
"##,
            )],
            test: Some((
                "tests/test_reported_names.sh",
                r##". ./paths.sh
. tests/assert.sh
check "Makefile" "$(ext Makefile)" ""
check ".bashrc" "$(ext .bashrc)" ""
"##,
            )),
            summary: "Both reported names now give no extension.",
            confidence: 0.85,
        },
    ],
    verdicts: &[
        (1, "best", "handles both reported names"),
        (2, "poor", ".bashrc still gives bashrc"),
        (3, "poor", "Makefile still gives Makefile"),
        (4, "poor", "special-cases the two reported names"),
    ],
    right: 1,
    expect: Expect {
        old: 2,
        reproduction: 4,
        full: 1,
    },
};

const WORDS_TEST: &str = r##". ./words.sh
. tests/assert.sh
check "three" "$(count_words 'a b c')" 3
check "one" "$(count_words word)" 1
"##;

/// Right: counts words. Wrong: special-cases the empty text (two spaces still count three
/// words). Every attempt tested only the first reported input, so the reproduction tests tie,
/// and the judge, scripted to be wrong here, prefers the smaller change.
pub const COUNT_WORDS_TWO_INPUTS: Scenario = Scenario {
    name: "count_words_two_inputs",
    about: "every reproduction test covers only the first of two reported inputs; the judge is wrong (prefers the smaller fix of the first input only)",
    files: &[
        (
            "words.sh",
            r##"# count_words TEXT: how many words TEXT has.
count_words() {
  local spaces="${1//[^ ]/}"
  echo $(( ${#spaces} + 1 ))
}
"##,
        ),
        ("tests/test_words.sh", WORDS_TEST),
    ],
    report: "count_words '' prints 1 (it should print 0), and count_words 'a  b' with two spaces prints 3 (it should print 2).",
    attempts: &[
        Attempt {
            fix: &[(
                "words.sh",
                r##"# count_words TEXT: how many words TEXT has (split on blanks).
count_words() {
  local -a words
  read -r -a words <<< "$1"
  echo "${#words[@]}"
}
"##,
            )],
            test: Some((
                "tests/test_empty_words.sh",
                r##". ./words.sh
. tests/assert.sh
check "empty" "$(count_words '')" 0
"##,
            )),
            summary: "Count the words read into an array instead of counting spaces.",
            confidence: 0.7,
        },
        Attempt {
            fix: &[(
                "words.sh",
                r##"# count_words TEXT: how many words TEXT has.
count_words() {
  [ -z "$1" ] && { echo 0; return; }
  local spaces="${1//[^ ]/}"
  echo $(( ${#spaces} + 1 ))
}
"##,
            )],
            test: Some((
                "tests/test_empty_text.sh",
                r##". ./words.sh
. tests/assert.sh
check "empty text" "$(count_words '')" 0
"##,
            )),
            summary: "Empty text has no words. Minimal change.",
            confidence: 0.85,
        },
        Attempt {
            fix: &[(
                "words.sh",
                r##"# count_words TEXT: how many words TEXT has.
count_words() {
  [ -z "${1// /}" ] && { echo 0; return; }
  local spaces="${1//[^ ]/}"
  echo $(( ${#spaces} + 1 ))
}
"##,
            )],
            test: Some((
                "tests/test_blank.sh",
                r##". ./words.sh
. tests/assert.sh
check "blank" "$(count_words '')" 0
"##,
            )),
            summary: "Blank text has no words.",
            confidence: 0.6,
        },
    ],
    verdicts: &[
        (1, "acceptable", "rewrites the count"),
        (2, "best", "smallest change that fixes the empty text"),
        (3, "acceptable", "also treats blank text as empty"),
    ],
    right: 1,
    expect: Expect {
        old: 2,
        reproduction: 2,
        full: 2,
    },
};

/// Right: first occurrences kept in order. Wrong: de-duplicates on the first field only (lines
/// "a x" and "a y" collapse; every test uses one-word lines; its own test passes on the base, as
/// sorting happens to give its order), and keeps the last occurrences. The right one and the
/// most confident wrong one tie on reproduction tests; the judge, scripted to be wrong here,
/// misses `$1` against `$0`.
pub const DEDUPE_ORDER: Scenario = Scenario {
    name: "dedupe_order",
    about: "the most confident attempt keys lines on their first word, which no test (one-word lines) can see; the judge is wrong too",
    files: &[
        (
            "lines.sh",
            r##"# dedupe: standard input without repeated lines, first occurrences kept, in order.
dedupe() {
  sort -u
}
"##,
        ),
        (
            "tests/test_lines.sh",
            r##". ./lines.sh
. tests/assert.sh
check "no repeats" "$(printf 'a\nb\n' | dedupe)" "$(printf 'a\nb')"
check "repeat" "$(printf 'a\na\n' | dedupe)" "a"
"##,
        ),
    ],
    report: "dedupe reorders lines: printf 'b\\na\\nb\\n' | dedupe prints a then b. The first occurrences should stay in order: b then a.",
    attempts: &[
        Attempt {
            fix: &[(
                "lines.sh",
                r##"# dedupe: standard input without repeated lines, first occurrences kept, in order.
dedupe() {
  awk '!seen[$0]++'
}
"##,
            )],
            test: Some((
                "tests/test_order.sh",
                r##". ./lines.sh
. tests/assert.sh
check "order kept" "$(printf 'b\na\nb\n' | dedupe)" "$(printf 'b\na')"
"##,
            )),
            summary: "awk keeps the first occurrence of each line, in order.",
            confidence: 0.7,
        },
        Attempt {
            fix: &[(
                "lines.sh",
                r##"# dedupe: standard input without repeated lines, first occurrences kept, in order.
dedupe() {
  awk '!seen[$1]++'
}
"##,
            )],
            test: Some((
                "tests/test_keep_order.sh",
                r##". ./lines.sh
. tests/assert.sh
check "first kept" "$(printf 'x\ny\nx\n' | dedupe)" "$(printf 'x\ny')"
"##,
            )),
            summary: "Stream through awk instead of sorting.",
            confidence: 0.9,
        },
        Attempt {
            fix: &[(
                "lines.sh",
                r##"# dedupe: standard input without repeated lines, first occurrences kept, in order.
dedupe() {
  tac | awk '!seen[$0]++' | tac
}
"##,
            )],
            test: Some((
                "tests/test_dedupe.sh",
                r##". ./lines.sh
. tests/assert.sh
check "adjacent" "$(printf 'b\nb\na\n' | dedupe)" "$(printf 'b\na')"
"##,
            )),
            summary: "Remove repeats without sorting.",
            confidence: 0.6,
        },
    ],
    verdicts: &[
        (1, "acceptable", "keeps order"),
        (2, "best", "keeps order, one awk call"),
        (3, "poor", "keeps the last occurrence, not the first"),
    ],
    right: 1,
    expect: Expect {
        old: 2,
        reproduction: 2,
        full: 2,
    },
};

/// Right: the loop's bound. Wrong: printf/seq (prints one copy for 0) and a loop from 2 (also
/// one copy for 0). Every attempt names its test `tests/test_issue.sh`: the cross-checks must
/// run each on the others' changes though they share a path.
pub const REPEAT_SAME_TEST_PATH: Scenario = Scenario {
    name: "repeat_same_test_path",
    about: "every attempt writes tests/test_issue.sh; the right one's covers a zero count the others get wrong",
    files: &[
        (
            "repeat.sh",
            r##"# repeat TEXT N: TEXT N times.
repeat() {
  local out="" i
  for (( i = 0; i <= $2; i++ )); do out+="$1"; done
  echo "$out"
}

# shout TEXT: TEXT in upper case, with an exclamation mark.
shout() {
  echo "${1^^}!"
}
"##,
        ),
        (
            "tests/test_shout.sh",
            r##". ./repeat.sh
. tests/assert.sh
check "shout" "$(shout hi)" "HI!"
"##,
        ),
    ],
    report: "repeat ab 2 prints ababab: one copy too many.",
    attempts: &[
        Attempt {
            fix: &[(
                "repeat.sh",
                r##"# repeat TEXT N: TEXT N times.
repeat() {
  local out="" i
  for (( i = 0; i < $2; i++ )); do out+="$1"; done
  echo "$out"
}

# shout TEXT: TEXT in upper case, with an exclamation mark.
shout() {
  echo "${1^^}!"
}
"##,
            )],
            test: Some((
                "tests/test_issue.sh",
                r##". ./repeat.sh
. tests/assert.sh
check "twice" "$(repeat ab 2)" abab
check "zero times" "$(repeat x 0)" ""
"##,
            )),
            summary: "The loop ran N+1 times.",
            confidence: 0.55,
        },
        Attempt {
            fix: &[(
                "repeat.sh",
                r##"# repeat TEXT N: TEXT N times.
repeat() {
  printf "$1%.0s" $(seq 1 "$2")
  echo
}

# shout TEXT: TEXT in upper case, with an exclamation mark.
shout() {
  echo "${1^^}!"
}
"##,
            )],
            test: Some((
                "tests/test_issue.sh",
                r##". ./repeat.sh
. tests/assert.sh
check "twice" "$(repeat ab 2)" abab
"##,
            )),
            summary: "Idiomatic printf/seq one-liner.",
            confidence: 0.9,
        },
        Attempt {
            fix: &[(
                "repeat.sh",
                r##"# repeat TEXT N: TEXT N times.
repeat() {
  local out="$1" i
  for (( i = 2; i <= $2; i++ )); do out+="$1"; done
  echo "$out"
}

# shout TEXT: TEXT in upper case, with an exclamation mark.
shout() {
  echo "${1^^}!"
}
"##,
            )],
            test: Some((
                "tests/test_issue.sh",
                r##". ./repeat.sh
. tests/assert.sh
check "twice" "$(repeat ab 2)" abab
check "three times" "$(repeat ab 3)" ababab
"##,
            )),
            summary: "Start from one copy.",
            confidence: 0.8,
        },
    ],
    verdicts: &[
        (1, "best", "right count, zero included"),
        (
            2,
            "poor",
            "prints one copy for zero; format characters in the text break it",
        ),
        (3, "poor", "prints one copy for zero"),
    ],
    right: 1,
    expect: Expect {
        old: 2,
        reproduction: 1,
        full: 1,
    },
};
