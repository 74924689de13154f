//! `sandbox.backend` and `[sandbox.kubernetes]`: where rollouts run, checked when the config is
//! loaded so that a typo is met with what to change rather than by a failing rollout.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use threadsmith_runner::sandbox::kubernetes::{KubernetesOptions, Toleration};

use super::{Config, ConfigError};

/// `[sandbox.kubernetes]`: the cluster and namespace rollout pods run in (with
/// `sandbox.backend = "kubernetes"`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSection {
    /// Where rollout pods run (default `threadsmith-rollouts`).
    pub namespace: Option<String>,
    /// A kubeconfig file; without it, the in-cluster service account, else the default
    /// kubeconfig (`KUBECONFIG`, `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current one).
    pub context: Option<String>,
    /// A RuntimeClass for rollout pods (e.g. gVisor's `gvisor`, Kata's `kata`).
    pub runtime_class: Option<String>,
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
    /// The Secret (in the namespace) to pull the rollout image with.
    pub image_pull_secret: Option<String>,
    /// The rollout pods' service account (default: none named; its token is never mounted).
    pub service_account: Option<String>,
    /// How long a pod may take to be scheduled, pull its image and start (default 180).
    pub start_timeout_secs: Option<u64>,
}

/// Where rollouts run.
#[derive(Debug, Clone, PartialEq)]
pub enum Backend {
    Docker,
    Kubernetes(Box<KubernetesOptions>),
}

/// A DNS-1123 label (a namespace's name): lowercase alphanumerics and `-`, at most 63.
fn is_dns_label(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !v.starts_with('-')
        && !v.ends_with('-')
}

/// A DNS-1123 subdomain (most objects' names): labels joined by `.`, at most 253.
fn is_dns_subdomain(v: &str) -> bool {
    v.len() <= 253 && v.split('.').all(is_dns_label)
}

/// A label key: an optional DNS subdomain prefix and `/`, then a name of at most 63.
fn is_label_key(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    prefix.is_none_or(is_dns_subdomain)
        && !name.is_empty()
        && threadsmith_runner::sandbox::kubernetes::is_label_value(name)
}

fn invalid(message: String) -> ConfigError {
    ConfigError::Invalid(format!("[sandbox.kubernetes]: {message}"))
}

impl KubernetesSection {
    /// The backend's options, or what is wrong with these settings.
    pub fn options(&self) -> Result<KubernetesOptions, ConfigError> {
        let d = KubernetesOptions::default();
        let namespace = self.namespace.clone().unwrap_or(d.namespace);
        if !is_dns_label(&namespace) {
            return Err(invalid(format!(
                "namespace `{namespace}` is not a valid namespace name (lowercase letters, digits and `-`, at most 63)"
            )));
        }
        for (key, value) in [
            ("runtime_class", &self.runtime_class),
            ("image_pull_secret", &self.image_pull_secret),
            ("service_account", &self.service_account),
        ] {
            if let Some(v) = value
                && !is_dns_subdomain(v)
            {
                return Err(invalid(format!(
                    "{key} `{v}` is not a valid object name (lowercase letters, digits, `-` and `.`)"
                )));
            }
        }
        if self.context.as_deref() == Some("") {
            return Err(invalid(
                "context is empty; leave it out to use the kubeconfig's current context".into(),
            ));
        }
        for (k, v) in &self.node_selector {
            if !is_label_key(k) {
                return Err(invalid(format!(
                    "node_selector key `{k}` is not a valid label key"
                )));
            }
            if !threadsmith_runner::sandbox::kubernetes::is_label_value(v) {
                return Err(invalid(format!(
                    "node_selector value `{v}` (of `{k}`) is not a valid label value (at most 63 letters, digits, `-`, `_`, `.`)"
                )));
            }
        }
        for (i, t) in self.tolerations.iter().enumerate() {
            check_toleration(t).map_err(|why| invalid(format!("tolerations[{i}]: {why}")))?;
        }
        let start_timeout = match self.start_timeout_secs {
            Some(0) => return Err(invalid("start_timeout_secs must be above 0".into())),
            Some(s) => Duration::from_secs(s),
            None => d.start_timeout,
        };
        Ok(KubernetesOptions {
            namespace,
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            runtime_class: self.runtime_class.clone(),
            node_selector: self.node_selector.clone(),
            tolerations: self.tolerations.clone(),
            image_pull_secret: self.image_pull_secret.clone(),
            service_account: self.service_account.clone(),
            start_timeout,
        })
    }
}

/// What Kubernetes would refuse in a toleration, said before a pod is refused for it.
fn check_toleration(t: &Toleration) -> Result<(), String> {
    let operator = t.operator.as_deref().unwrap_or("Equal");
    match operator {
        "Equal" => {
            if t.key.is_none() {
                return Err("operator Equal needs a key (only Exists may match every key)".into());
            }
        }
        "Exists" => {
            if t.value.is_some() {
                return Err("operator Exists takes no value".into());
            }
        }
        other => return Err(format!("operator `{other}` is not Equal or Exists")),
    }
    if let Some(k) = &t.key
        && !is_label_key(k)
    {
        return Err(format!("key `{k}` is not a valid taint key"));
    }
    if let Some(e) = &t.effect
        && !matches!(e.as_str(), "NoSchedule" | "PreferNoSchedule" | "NoExecute")
    {
        return Err(format!(
            "effect `{e}` is not NoSchedule, PreferNoSchedule or NoExecute"
        ));
    }
    if t.toleration_seconds.is_some() && t.effect.as_deref() != Some("NoExecute") {
        return Err("toleration_seconds applies only to effect NoExecute".into());
    }
    Ok(())
}

impl super::SandboxSection {
    /// Refuses the settings only the bot's own `[sandbox]` may hold (where rollouts run) in a
    /// repository's settings (`where_`: which).
    pub fn refuse_bot_only(&self, where_: &str) -> Result<(), ConfigError> {
        if self.backend.is_some() || self.kubernetes.is_some() {
            return Err(ConfigError::Invalid(format!(
                "{where_}: `backend` and `kubernetes` are the bot's settings (its [sandbox] section), not a repository's"
            )));
        }
        if self.environment_cache_size.is_some() {
            return Err(ConfigError::Invalid(format!(
                "{where_}: `environment_cache_size` is the bot's setting (its [sandbox] section), not a repository's: the cache is shared"
            )));
        }
        Ok(())
    }
}

impl Config {
    /// Where rollouts run: `sandbox.backend`, `docker` (the default) or `kubernetes`.
    pub fn backend(&self) -> Result<Backend, ConfigError> {
        match self.sandbox.backend.as_deref().unwrap_or("docker") {
            "docker" => Ok(Backend::Docker),
            "kubernetes" => Ok(Backend::Kubernetes(Box::new(
                self.sandbox
                    .kubernetes
                    .clone()
                    .unwrap_or_default()
                    .options()?,
            ))),
            other => Err(ConfigError::Invalid(format!(
                "sandbox.backend `{other}` is not `docker` or `kubernetes`"
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
