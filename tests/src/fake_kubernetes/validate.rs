//! Validation as the API server does it (k8s.io/apimachinery `util/validation`, and the parts of
//! `pkg/apis/core/validation` and `networking/validation` that matter here), with its messages.

use serde_json::{Value, json};

use super::status::Cause;

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const NAME_PART_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// DNS-1123 subdomain (names of pods, network policies).
pub fn dns_subdomain(s: &str) -> Result<(), String> {
    if s.len() > 253 {
        return Err("must be no more than 253 characters".into());
    }
    if s.split('.').all(is_dns_label) {
        Ok(())
    } else {
        Err(SUBDOMAIN_MSG.into())
    }
}

/// DNS-1123 label (names of namespaces and containers).
pub fn dns_label(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err("must be no more than 63 characters".into());
    }
    if is_dns_label(s) {
        Ok(())
    } else {
        Err(LABEL_MSG.into())
    }
}

fn is_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
}

pub fn label_value(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err("must be no more than 63 characters".into());
    }
    if s.is_empty() || is_name_part(s) {
        Ok(())
    } else {
        Err(LABEL_VALUE_MSG.into())
    }
}

/// A label key or annotation key: `[prefix/]name`.
pub fn qualified_name(s: &str) -> Result<(), String> {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            return Err("prefix part must be non-empty".into());
        }
        dns_subdomain(p).map_err(|e| format!("prefix part {e}"))?;
    }
    if name.is_empty() {
        return Err("name part must be non-empty".into());
    }
    if name.len() > 63 {
        return Err("name part must be no more than 63 characters".into());
    }
    if is_name_part(name) {
        Ok(())
    } else {
        Err(NAME_PART_MSG.into())
    }
}

/// `metadata`: the name (already generated from `generateName` if that was used) and labels.
pub fn metadata(obj: &Value, name_rule: fn(&str) -> Result<(), String>) -> Vec<Cause> {
    let mut causes = Vec::new();
    match obj.pointer("/metadata/name").and_then(Value::as_str) {
        None | Some("") => causes.push(Cause {
            reason: "FieldValueRequired",
            field: "metadata.name".into(),
            message: "Required value: name or generateName is required".into(),
        }),
        Some(name) => {
            if let Err(e) = name_rule(name) {
                causes.push(Cause::invalid("metadata.name", &json!(name), &e));
            }
        }
    }
    if let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            if let Err(e) = qualified_name(k) {
                causes.push(Cause::invalid("metadata.labels", &json!(k), &e));
            }
            match v.as_str() {
                Some(s) => {
                    if let Err(e) = label_value(s) {
                        causes.push(Cause::invalid("metadata.labels", v, &e));
                    }
                }
                None => causes.push(Cause::invalid("metadata.labels", v, "must be a string")),
            }
        }
    }
    causes
}

/// A pod's spec (`pkg/apis/core/validation.ValidatePodSpec`, the fields the fake acts on).
pub fn pod_spec(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let Some(spec) = obj.get("spec").filter(|s| s.is_object()) else {
        causes.push(Cause::required("spec.containers"));
        return causes;
    };
    let containers = spec.get("containers").and_then(Value::as_array);
    match containers {
        None => causes.push(Cause::required("spec.containers")),
        Some(cs) if cs.is_empty() => causes.push(Cause::required("spec.containers")),
        Some(cs) => {
            let mut seen = Vec::new();
            for (i, c) in cs.iter().enumerate() {
                let at = format!("spec.containers[{i}]");
                match c.get("name").and_then(Value::as_str) {
                    None | Some("") => causes.push(Cause::required(format!("{at}.name"))),
                    Some(n) => {
                        if let Err(e) = dns_label(n) {
                            causes.push(Cause::invalid(format!("{at}.name"), &json!(n), &e));
                        } else if seen.contains(&n) {
                            causes.push(Cause {
                                reason: "FieldValueDuplicate",
                                field: format!("{at}.name"),
                                message: format!("Duplicate value: {n:?}"),
                            });
                        }
                        seen.push(n);
                    }
                }
                if c.get("image")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    causes.push(Cause::required(format!("{at}.image")));
                }
                if let Some(p) = c.get("imagePullPolicy") {
                    let ok = ["Always", "IfNotPresent", "Never"];
                    if !p.as_str().is_some_and(|p| ok.contains(&p)) {
                        causes.push(Cause::not_supported(
                            format!("{at}.imagePullPolicy"),
                            p,
                            &ok,
                        ));
                    }
                }
                for (field, q) in [
                    ("limits", "cpu"),
                    ("limits", "memory"),
                    ("requests", "cpu"),
                    ("requests", "memory"),
                ] {
                    if let Some(v) = c.pointer(&format!("/resources/{field}/{q}"))
                        && super::quantity::parse(v).is_none()
                    {
                        causes.push(Cause::invalid(
                                format!("{at}.resources.{field}[{q}]"),
                                v,
                                "must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                            ));
                    }
                }
            }
        }
    }
    if let Some(p) = spec.get("restartPolicy") {
        let ok = ["Always", "OnFailure", "Never"];
        if !p.as_str().is_some_and(|p| ok.contains(&p)) {
            causes.push(Cause::not_supported("spec.restartPolicy", p, &ok));
        }
    }
    if let Some(d) = spec.get("activeDeadlineSeconds")
        && d.as_i64().is_none_or(|d| d <= 0)
    {
        causes.push(Cause::invalid(
            "spec.activeDeadlineSeconds",
            d,
            "must be between 1 and 2147483647, inclusive",
        ));
    }
    if let Some(vols) = spec.get("volumes").and_then(Value::as_array) {
        for (i, v) in vols.iter().enumerate() {
            match v.get("name").and_then(Value::as_str) {
                None | Some("") => causes.push(Cause::required(format!("spec.volumes[{i}].name"))),
                Some(n) => {
                    if let Err(e) = dns_label(n) {
                        causes.push(Cause::invalid(
                            format!("spec.volumes[{i}].name"),
                            &json!(n),
                            &e,
                        ));
                    }
                }
            }
        }
    }
    causes
}

/// What a pod update may change in `spec` (`ValidatePodUpdate`): the containers' images,
/// `activeDeadlineSeconds`, added tolerations and `terminationGracePeriodSeconds`.
pub fn pod_spec_update(old: &Value, new: &Value) -> Vec<Cause> {
    let mask = |spec: &Value| {
        let mut s = spec.clone();
        if let Some(o) = s.as_object_mut() {
            o.remove("activeDeadlineSeconds");
            o.remove("tolerations");
            o.remove("terminationGracePeriodSeconds");
        }
        for list in ["containers", "initContainers"] {
            if let Some(cs) = s.get_mut(list).and_then(Value::as_array_mut) {
                for c in cs {
                    if let Some(o) = c.as_object_mut() {
                        o.remove("image");
                    }
                }
            }
        }
        s
    };
    let (Some(a), Some(b)) = (old.get("spec"), new.get("spec")) else {
        return vec![];
    };
    if mask(a) == mask(b) {
        vec![]
    } else {
        vec![Cause::forbidden(
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        )]
    }
}

/// A NetworkPolicy's spec (`ValidateNetworkPolicySpec`, the selectors and policy types).
pub fn network_policy_spec(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    match spec.get("podSelector") {
        Some(sel) if sel.is_object() => {
            if let Err(e) = super::selector::LabelSelector::from_object(sel) {
                causes.push(Cause::invalid("spec.podSelector", sel, &e));
            }
        }
        // A missing podSelector is defaulted to {} (select every pod) by the decoder.
        None | Some(Value::Null) => {}
        Some(other) => causes.push(Cause::invalid(
            "spec.podSelector",
            other,
            "must be an object",
        )),
    }
    if let Some(types) = spec.get("policyTypes") {
        let ok = ["Ingress", "Egress"];
        match types.as_array() {
            Some(a) if a.len() <= 2 => {
                for (i, t) in a.iter().enumerate() {
                    if !t.as_str().is_some_and(|t| ok.contains(&t)) {
                        causes.push(Cause::not_supported(
                            format!("spec.policyTypes[{i}]"),
                            t,
                            &ok,
                        ));
                    }
                }
            }
            _ => causes.push(Cause::invalid(
                "spec.policyTypes",
                types,
                "may not specify more than two policyTypes",
            )),
        }
    }
    causes
}
