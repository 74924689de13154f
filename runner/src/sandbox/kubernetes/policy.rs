//! No network for rollouts: one NetworkPolicy in the namespace selects every rollout pod but
//! those of an opted-in setup phase (labelled [`LABEL_NETWORK`]) and allows them no traffic at
//! all, in or out. Created at start-up when missing; one that differs is reported (enforcing it
//! takes a CNI that implements NetworkPolicy: Calico, Cilium…).

use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicySpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use kube::api::PostParams;

use super::*;

/// The policy's name in the rollout namespace (also in deploy/kubernetes).
pub const POLICY_NAME: &str = "threadsmith-rollouts-no-network";

/// What [`Kubernetes::ensure_policy`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyCheck {
    /// It was missing and is now created.
    Created,
    /// It is there, as threadsmith makes it.
    Present,
    /// It is there but does not deny all traffic of rollout pods: why.
    Differs(String),
}

/// The policy threadsmith makes.
pub fn network_policy(namespace: &str) -> NetworkPolicy {
    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(POLICY_NAME.into()),
            namespace: Some(namespace.into()),
            labels: Some(
                [(
                    "app.kubernetes.io/managed-by".to_string(),
                    "threadsmith".to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(rollout_selector()),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: None,
            egress: None,
        }),
    }
}

fn rollout_selector() -> LabelSelector {
    LabelSelector {
        match_labels: Some([(LABEL_MANAGED.to_string(), "true".to_string())].into()),
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: LABEL_NETWORK.into(),
            operator: "DoesNotExist".into(),
            values: None,
        }]),
    }
}

/// Why `policy` does not deny all traffic of every rollout pod; `None` when it does. Rules
/// written as empty lists and absent ones are the same; so are the selector's two spellings of
/// "managed = true" (a label or an `In` expression).
pub fn differs(policy: &NetworkPolicy) -> Option<String> {
    let Some(spec) = &policy.spec else {
        return Some("it has no spec".into());
    };
    let types = spec.policy_types.clone().unwrap_or_default();
    for t in ["Ingress", "Egress"] {
        if !types.iter().any(|x| x == t) {
            return Some(format!("its policyTypes do not include {t}"));
        }
    }
    if spec.ingress.as_ref().is_some_and(|r| !r.is_empty()) {
        return Some("it allows some ingress".into());
    }
    if spec.egress.as_ref().is_some_and(|r| !r.is_empty()) {
        return Some("it allows some egress".into());
    }
    let selector = spec.pod_selector.clone().unwrap_or_default();
    let mut requirements: Vec<(String, String, Vec<String>)> = selector
        .match_labels
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, "In".to_string(), vec![v]))
        .collect();
    for e in selector.match_expressions.unwrap_or_default() {
        requirements.push((e.key, e.operator, e.values.unwrap_or_default()));
    }
    requirements.sort();
    let expected = vec![
        (
            LABEL_MANAGED.to_string(),
            "In".to_string(),
            vec!["true".to_string()],
        ),
        (
            LABEL_NETWORK.to_string(),
            "DoesNotExist".to_string(),
            vec![],
        ),
    ];
    (requirements != expected).then(|| {
        format!(
            "its podSelector is not {LABEL_MANAGED}=true without {LABEL_NETWORK} (it is {requirements:?})"
        )
    })
}

impl Kubernetes {
    /// Makes the rollouts' NetworkPolicy when it is missing; says whether one there differs.
    pub async fn ensure_policy(&self) -> Result<PolicyCheck, SandboxError> {
        let api: Api<NetworkPolicy> = Api::namespaced(self.client.clone(), &self.options.namespace);
        match call(
            "reading the rollouts' NetworkPolicy",
            api.get_opt(POLICY_NAME),
        )
        .await?
        {
            Some(existing) => Ok(match differs(&existing) {
                None => PolicyCheck::Present,
                Some(why) => PolicyCheck::Differs(why),
            }),
            None => {
                let policy = network_policy(&self.options.namespace);
                match tokio::time::timeout(API_LIMIT, api.create(&PostParams::default(), &policy))
                    .await
                {
                    Ok(Ok(_)) => Ok(PolicyCheck::Created),
                    // Another replica made it meanwhile: check that one.
                    Ok(Err(e)) if is_status(&e, 409) => {
                        let existing =
                            call("reading the rollouts' NetworkPolicy", api.get(POLICY_NAME))
                                .await?;
                        Ok(match differs(&existing) {
                            None => PolicyCheck::Present,
                            Some(why) => PolicyCheck::Differs(why),
                        })
                    }
                    Ok(Err(e)) => Err(kube_err("creating the rollouts' NetworkPolicy")(e)),
                    Err(_) => Err(backend_err(
                        "creating the rollouts' NetworkPolicy",
                        "the API server did not answer in time",
                    )),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::networking::v1::NetworkPolicyIngressRule;

    use super::*;

    #[test]
    fn threadsmiths_policy_denies_everything_and_variants_are_judged() {
        let mine = network_policy("ns");
        assert_eq!(differs(&mine), None);
        // The same written another way (as deploy/kubernetes may): empty rule lists, an `In`.
        let mut same = mine.clone();
        let spec = same.spec.as_mut().unwrap();
        spec.ingress = Some(vec![]);
        spec.egress = Some(vec![]);
        spec.pod_selector = Some(LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: LABEL_NETWORK.into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
                LabelSelectorRequirement {
                    key: LABEL_MANAGED.into(),
                    operator: "In".into(),
                    values: Some(vec!["true".into()]),
                },
            ]),
        });
        assert_eq!(differs(&same), None);

        let mut open = mine.clone();
        open.spec.as_mut().unwrap().ingress = Some(vec![NetworkPolicyIngressRule::default()]);
        assert!(differs(&open).unwrap().contains("ingress"));
        let mut egress_only = mine.clone();
        egress_only.spec.as_mut().unwrap().policy_types = Some(vec!["Egress".into()]);
        assert!(differs(&egress_only).unwrap().contains("Ingress"));
        let mut everyone = mine.clone();
        everyone.spec.as_mut().unwrap().pod_selector = Some(LabelSelector::default());
        assert!(differs(&everyone).unwrap().contains("podSelector"));
    }
}
