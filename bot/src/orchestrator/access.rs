//! Who may act on a task: its requester, a maintainer, or a member of a maintainers' group.

use super::*;

impl Bot {
    pub(super) async fn may_act(&self, user: &str, link: &ChatTaskLink) -> bool {
        self.may_act_for(user, &link.requester).await
    }

    /// The requester, a maintainer, or a member of a maintainers' group.
    pub(super) async fn may_act_for(&self, user: &str, requester: &str) -> bool {
        if user == requester || self.settings.maintainers.iter().any(|m| m == user) {
            return true;
        }
        for group in &self.settings.maintainer_groups {
            match self.port.in_group(user, group).await {
                Ok(true) => return true,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, group, "could not read a maintainers' group"),
            }
        }
        false
    }
}
