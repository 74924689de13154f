//! The cross-checks on the task page: each rollout's reproduction test (a row) on the base
//! commit and on each change (the columns), as stored (see `threadsmith_runner::crosscheck`).

use maud::{Markup, html};
use threadsmith_runner::crosscheck::{Cell, Matrix};

fn cell_class(cell: Option<Cell>) -> &'static str {
    match cell {
        Some(Cell::Passed) => "add",
        Some(Cell::Failed) => "del",
        Some(Cell::NotRun) | None => "meta",
    }
}

/// The section: a line saying what ran (or why nothing did), the table, and the notes.
pub fn crosschecks(matrix: &Matrix) -> Markup {
    let valid = matrix.valid_tests();
    html! {
        h2 { "Reproduction tests" }
        div.card {
            p { (matrix.summary_line()) }
            @if matrix.skipped.is_none() && !matrix.tests.is_empty() {
                table.matrix {
                    tr {
                        th { "test of" }
                        th { "base" }
                        @for j in &matrix.changes { th { "rollout " (j) } }
                    }
                    @for k in &matrix.tests {
                        tr {
                            td {
                                "rollout " (k)
                                @if !valid.contains(k) { span.meta { " (no credit: does not fail on the base)" } }
                            }
                            @let base = matrix.cell(*k, None);
                            td class=(cell_class(base)) { (base.map_or("—", Cell::words)) }
                            @for j in &matrix.changes {
                                @let c = matrix.cell(*k, Some(*j));
                                td class=(cell_class(c)) { (c.map_or("—", Cell::words)) }
                            }
                        }
                    }
                }
            }
            @for note in &matrix.notes { p.meta { (note) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use threadsmith_runner::crosscheck::Run;

    use super::*;

    #[test]
    fn the_table_shows_each_run_and_which_tests_count() {
        let run = |test_of, on, result| Run {
            test_of,
            on,
            result,
            ms: 0,
        };
        let matrix = Matrix {
            tests: vec![1, 2],
            changes: vec![1, 2],
            runs: vec![
                run(1, None, Cell::Passed),
                run(1, Some(1), Cell::Passed),
                run(1, Some(2), Cell::Passed),
                run(2, None, Cell::Failed),
                run(2, Some(1), Cell::Failed),
                run(2, Some(2), Cell::Passed),
            ],
            notes: vec!["on rollout 3's change: <b>the change did not apply</b>".into()],
            ..Matrix::default()
        };
        let html = crosschecks(&matrix).into_string();
        assert!(
            html.contains("1 of 2 rollouts wrote one that fails on the base commit"),
            "{html}"
        );
        assert!(
            html.contains("rollout 1<span class=\"meta\"> (no credit"),
            "{html}"
        );
        assert!(html.contains("<td class=\"del\">fails</td><td class=\"del\">fails</td><td class=\"add\">passes</td>"), "{html}");
        assert!(
            html.contains("&lt;b&gt;the change"),
            "notes are escaped: {html}"
        );
        let skipped =
            crosschecks(&Matrix::skipped("the repository has no test command")).into_string();
        assert!(skipped.contains("were not cross-checked: the repository has no test command."));
        assert!(!skipped.contains("<table"));
    }
}
