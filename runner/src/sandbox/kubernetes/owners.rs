//! Label values (owners and tasks made to fit) and the deletion of a task's pods or of the pods
//! whose owning bot process is gone.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams};
use sha2::{Digest, Sha256};

use super::pod::{ANNOTATION_OWNER, ANNOTATION_TASK};
use super::{API_LIMIT, Kubernetes, call, is_status};
use crate::sandbox::{LABEL_MANAGED, LABEL_OWNER, LABEL_TASK, SandboxError};

/// Whether `v` is a valid label value: at most 63 characters, alphanumerics with `-`, `_`, `.`
/// inside, beginning and ending with an alphanumeric (or empty).
pub fn is_label_value(v: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    v.len() <= 63
        && v.chars().all(ok)
        && v.chars().next().is_none_or(|c| c.is_ascii_alphanumeric())
        && v.chars().last().is_none_or(|c| c.is_ascii_alphanumeric())
}

/// `v` as a label value: itself when it is one; else its readable part (up to 46 characters)
/// and a digest of the whole, so that two values never share a label by being cut alike.
pub fn label_value(v: &str) -> String {
    if is_label_value(v) {
        return v.to_string();
    }
    let digest = hex::encode(Sha256::digest(v.as_bytes()));
    let readable: String = v
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(46)
        .collect();
    let readable = readable.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if readable.is_empty() {
        digest[..16].to_string()
    } else {
        format!("{readable}-{}", &digest[..16])
    }
}

/// An owner (`host:pid:start`) as a label value: `:` becomes `_` (which no host name holds),
/// so that a short owner reads back whole ([`decode_owner`]); a longer one is cut and digested.
pub fn encode_owner(owner: &str) -> String {
    let plain = owner.replace(':', "_");
    if !owner.contains('_') && is_label_value(&plain) {
        plain
    } else {
        label_value(owner)
    }
}

/// The owner an [`encode_owner`] label names, when it could be read back.
pub fn decode_owner(label: &str) -> String {
    label.replace('_', ":")
}

/// A managed pod's task and owner: the annotations (whole), else the labels.
fn task_and_owner(pod: &Pod) -> (Option<String>, Option<String>) {
    let meta = &pod.metadata;
    let note = |k: &str| meta.annotations.as_ref().and_then(|a| a.get(k)).cloned();
    let label = |k: &str| meta.labels.as_ref().and_then(|l| l.get(k)).cloned();
    (
        note(ANNOTATION_TASK).or_else(|| label(LABEL_TASK)),
        note(ANNOTATION_OWNER).or_else(|| label(LABEL_OWNER).map(|o| decode_owner(&o))),
    )
}

impl Kubernetes {
    /// Every pod labelled as threadsmith's in the namespace.
    pub async fn list_managed(&self) -> Result<Vec<Pod>, SandboxError> {
        let lp = ListParams::default().labels(&format!("{LABEL_MANAGED}=true"));
        Ok(call("listing its pods", self.pods().list(&lp)).await?.items)
    }

    /// Deletes threadsmith's pods that `doomed` selects (by task and owner), but those made
    /// less than `spare` ago; how many.
    pub(super) async fn remove_where(
        &self,
        doomed: impl Fn(Option<&str>, Option<&str>) -> bool,
        spare: Duration,
    ) -> Result<usize, SandboxError> {
        let mut removed = 0;
        let now = k8s_openapi::jiff::Timestamp::now().as_second();
        for pod in self.list_managed().await? {
            let (task, owner) = task_and_owner(&pod);
            let young = pod
                .metadata
                .creation_timestamp
                .as_ref()
                .is_some_and(|t| now.saturating_sub(t.0.as_second()) < spare.as_secs() as i64);
            if !young
                && doomed(task.as_deref(), owner.as_deref())
                && let Some(name) = pod.metadata.name.as_deref()
            {
                self.delete_pod(name).await;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Deletes a pod at once (no grace: its processes are the agent's); failures are logged.
    pub(super) async fn delete_pod(&self, name: &str) {
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::background()
        };
        match tokio::time::timeout(API_LIMIT, self.pods().delete(name, &dp)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if is_status(&e, 404) => {}
            Ok(Err(e)) => {
                tracing::warn!(pod = name, error = %e, "could not delete a rollout pod");
            }
            Err(_) => {
                tracing::warn!(
                    pod = name,
                    "the API server did not answer the deletion of a rollout pod"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_valid_and_told_apart() {
        for v in ["", "a", "0b1c-d.e_f", &"x".repeat(63)] {
            assert!(is_label_value(v), "{v}");
            assert_eq!(label_value(v), v);
        }
        for v in ["-a", "a-", "a b", "ä", "a:b", &"x".repeat(64)] {
            assert!(!is_label_value(v), "{v}");
            let l = label_value(v);
            assert!(is_label_value(&l), "{v} → {l}");
        }
        let long = format!("{}1", "y".repeat(70));
        let other = format!("{}2", "y".repeat(70));
        assert_ne!(label_value(&long), label_value(&other));
        assert_eq!(label_value(&long), label_value(&long), "deterministic");
        assert_eq!(label_value(":::"), label_value(":::").as_str());
        assert!(is_label_value(&label_value(":::")));
    }

    #[test]
    fn owners_fit_a_label_and_short_ones_read_back() {
        let owner = "threadsmith-bot-7d9f8b6c5-xk2lp:1:4242";
        let label = encode_owner(owner);
        assert_eq!(label, "threadsmith-bot-7d9f8b6c5-xk2lp_1_4242");
        assert!(is_label_value(&label));
        assert_eq!(decode_owner(&label), owner);
        // A host name too long for a label: cut, digested, still valid and distinct.
        let long = format!("{}.example.internal:12345:987654321", "node".repeat(12));
        let label = encode_owner(&long);
        assert!(is_label_value(&label), "{label}");
        assert!(label.len() <= 63);
        assert_ne!(label, encode_owner(&long.replace("12345", "12346")));
        // This process's own owner label always encodes to a valid value.
        assert!(is_label_value(
            &encode_owner(&crate::sandbox::owner_label())
        ));
        // An owner with a `_` is never read back wrong: it is digested.
        assert_ne!(decode_owner(&encode_owner("odd_host:1:2")), "odd:host:1:2");
    }
}
