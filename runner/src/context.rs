//! The state an agent works with inside one rollout: its sandbox, the rollout's index, where
//! events go, the cancellation, and the record of the commands it ran. Shared by the agents
//! ([`crate::agent`]) and the rollout that runs them ([`crate::rollout`]).

use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use crate::sandbox::{ExecOutcome, ExecRequest, Sandbox, SandboxError};
use crate::types::{CommandKind, CommandRecord, Phase, RolloutEvent};
use crate::usage::{ModelUsage, TokenBudget};

/// The state an agent works with: its sandbox, and the record of what it ran.
pub struct RolloutCtx<'a> {
    pub sandbox: &'a dyn Sandbox,
    pub index: u32,
    pub events: &'a UnboundedSender<RolloutEvent>,
    pub cancel: &'a CancellationToken,
    pub command_timeout: Duration,
    pub commands: Vec<CommandRecord>,
    /// The task's token limits, checked before each model request (`None`: no limit).
    pub budget: Option<&'a dyn TokenBudget>,
    /// What the model was asked and answered so far, and how long its answers took.
    pub usage: ModelUsage,
    pub model_time: Duration,
}

impl RolloutCtx<'_> {
    pub fn phase(&self, phase: Phase) {
        let _ = self.events.send(RolloutEvent::Phase {
            index: self.index,
            phase,
        });
    }

    /// Runs a command in the sandbox and records it as a citation.
    pub async fn run(
        &mut self,
        kind: CommandKind,
        display: String,
        req: ExecRequest,
    ) -> Result<ExecOutcome, SandboxError> {
        let started_at = Utc::now();
        let out = self.sandbox.exec(req, self.cancel).await?;
        let record = CommandRecord {
            seq: self.commands.len() as u32 + 1,
            kind,
            command: display,
            exit_code: out.exit_code,
            timed_out: out.timed_out,
            duration: out.duration,
            output: out.output.to_text(),
            output_bytes: out.output.total_bytes,
            dropped_bytes: out.output.dropped_bytes(),
            started_at,
        };
        self.commands.push(record.clone());
        let _ = self.events.send(RolloutEvent::Command {
            index: self.index,
            record,
        });
        Ok(out)
    }
}
