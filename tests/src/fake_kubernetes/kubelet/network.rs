//! NetworkPolicy enforcement, as far as Docker's networks allow: a pod whose egress every
//! selecting policy denies (an `Egress` policy type and no egress rule among all of them) is
//! taken off every network — it has loopback only, and nothing can reach it either. Any other
//! pod is on the default bridge: rules that allow some peers are not narrowed further (the fake
//! has no per-peer filtering), and ingress-only isolation is not enforced.

use serde_json::Value;

use super::super::resource::NETWORK_POLICIES;
use super::super::selector::{LabelSelector, labels_of};
use super::super::store::{Store, namespace_of};

/// Whether the pod must have no network, given the policies stored now.
pub fn isolated(store: &Store, pod: &Value) -> bool {
    let ns = namespace_of(pod);
    let labels = labels_of(pod);
    let (policies, _) = store.list(&NETWORK_POLICIES, Some(ns));
    let mut egress_isolated = false;
    let mut any_egress_rule = false;
    for p in &policies {
        let selector = match p.pointer("/spec/podSelector") {
            Some(s) if s.is_object() => {
                LabelSelector::from_object(s).unwrap_or_else(|_| LabelSelector::nothing())
            }
            _ => LabelSelector::default(),
        };
        if !selector.matches(&labels) {
            continue;
        }
        let types: Vec<&str> = p
            .pointer("/spec/policyTypes")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if types.contains(&"Egress") {
            egress_isolated = true;
            if p.pointer("/spec/egress")
                .and_then(Value::as_array)
                .is_some_and(|rules| !rules.is_empty())
            {
                any_egress_rule = true;
            }
        }
    }
    egress_isolated && !any_egress_rule
}
