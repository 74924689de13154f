//! What every scenario repository shares: a test runner that runs every `tests/test_*.sh`
//! (so a reproduction test an attempt adds is part of the repository's test command), an
//! assertion helper, and the test command in `.threadsmith.toml`.

use super::File;

/// The test command.
pub const TEST_COMMAND: &str = "bash run_tests.sh";

const RUN_TESTS: &str = r##"#!/bin/bash
# Runs every tests/test_*.sh; fails when one of them fails.
fail=0
for t in tests/test_*.sh; do
  if bash "$t"; then echo "passed: $t"; else echo "FAILED: $t"; fail=1; fi
done
exit $fail
"##;

const ASSERT: &str = r##"# check NAME GOT WANT: stops the test file at the first difference.
check() {
  if [ "$2" != "$3" ]; then
    echo "not ok - $1: got '$2', want '$3'"
    exit 1
  fi
  echo "ok - $1"
}
"##;

const CONFIG: &str = "test = \"bash run_tests.sh\"\n";

/// A scenario's files plus the shared ones.
pub fn files(own: &[File]) -> Vec<File> {
    let mut all = vec![
        ("run_tests.sh", RUN_TESTS),
        ("tests/assert.sh", ASSERT),
        (".threadsmith.toml", CONFIG),
    ];
    all.extend_from_slice(own);
    all
}
