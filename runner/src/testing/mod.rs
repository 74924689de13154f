//! Fakes of the runner's two slow dependencies, for tests that run in milliseconds: an in-memory
//! sandbox backend ([`MemoryBackend`]) and a scripted model ([`ScriptedModel`]). No Docker, no
//! network, no external binaries. Both record everything they were asked, for assertions.
//!
//! Built with the runner's own tests, and for other crates' tests through the `testing` feature
//! (`threadsmith-runner = { …, features = ["testing"] }` in their dev-dependencies), so that none
//! of it is in a release build.
//!
//! ```ignore
//! let backend = MemoryBackend::new()
//!     .with_file("src/lib.rs", "pub fn answer() -> u32 { 41 }\n")
//!     .on_script("cargo test", Answer::ok("test result: ok"));
//! let model = ScriptedModel::new();
//! model.tool_call("write_file", json!({"path": "src/lib.rs", "content": "…"}));
//! model.finish("Fixed the answer.", 0.9);
//! let runner = Runner::new(Arc::new(backend.clone()), Some(Arc::new(model.clone())));
//! ```

mod memory;
mod model;

pub use memory::{Answer, BackendCall, ExecCall, Files, MemoryBackend, Step};
pub use model::{ModelRequest, ModelTurn, ScriptedModel};

/// A lock that a panicking test thread left poisoned is still read: the data is only records.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
