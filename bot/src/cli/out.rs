//! Writing the CLI's answers to stdout. A reader that stops early (`threadsmith show … | head -1`)
//! closes the pipe: that ends the command quietly with 141 (as if killed by SIGPIPE, like other
//! command-line tools), never with a panic.

use std::io::Write;
use std::process::ExitCode;

/// The exit status of a command whose output pipe was closed by its reader.
pub const BROKEN_PIPE: u8 = 141;

/// Writes `text` to stdout and flushes it.
pub fn print(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

/// Whether an error is stdout's reader going away.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// A command's result, with a closed pipe turned into a quiet [`BROKEN_PIPE`].
pub fn quiet_broken_pipe(result: anyhow::Result<ExitCode>) -> anyhow::Result<ExitCode> {
    match result {
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::from(BROKEN_PIPE)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn a_closed_pipe_is_recognised_through_context() {
        let e = Err::<(), _>(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            .context("printing the task")
            .unwrap_err();
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("no task starts with `x`")));
        assert_eq!(
            quiet_broken_pipe(Err(e)).unwrap(),
            ExitCode::from(BROKEN_PIPE)
        );
    }
}
