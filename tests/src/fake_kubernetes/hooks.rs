//! What differs between the resources: defaulting on create (as the API server's defaulters
//! fill the fields in), validation, what an update may change, and field selectors.

use serde_json::{Value, json};

use super::resource::{NAMESPACES, NETWORK_POLICIES, PODS, Resource};
use super::status::Cause;
use super::validate;

/// The node every scheduled pod lands on.
pub const NODE_NAME: &str = "fake-node";

pub fn field_selectors(res: &Resource) -> &'static [&'static str] {
    if *res == PODS {
        &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ]
    } else if *res == NAMESPACES {
        &["metadata.name", "status.phase"]
    } else {
        &["metadata.name", "metadata.namespace"]
    }
}

pub fn validate_create(res: &Resource, obj: &Value) -> Vec<Cause> {
    if *res == PODS {
        let mut c = validate::metadata(obj, validate::dns_subdomain);
        c.extend(validate::pod_spec(obj));
        c
    } else if *res == NETWORK_POLICIES {
        let mut c = validate::metadata(obj, validate::dns_subdomain);
        c.extend(validate::network_policy_spec(obj));
        c
    } else {
        validate::metadata(obj, validate::dns_label)
    }
}

pub fn validate_update(res: &Resource, old: &Value, new: &Value) -> Vec<Cause> {
    let mut c = validate_create(res, new);
    if *res == PODS {
        c.extend(validate::pod_spec_update(old, new));
    }
    c
}

/// Fills the defaults in, as the API server's defaulting does before storing.
pub fn default_on_create(res: &Resource, obj: &mut Value) {
    if *res == PODS {
        default_pod(obj);
    } else if *res == NETWORK_POLICIES {
        let spec = &mut obj["spec"];
        if spec.get("podSelector").is_none_or(Value::is_null) {
            spec["podSelector"] = json!({});
        }
        if spec.get("policyTypes").is_none() {
            let mut types = vec!["Ingress"];
            if spec.get("egress").is_some_and(|e| !e.is_null()) {
                types.push("Egress");
            }
            spec["policyTypes"] = json!(types);
        }
    } else if *res == NAMESPACES {
        let name = obj["metadata"]["name"].clone();
        obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
        obj["spec"] = json!({"finalizers": ["kubernetes"]});
        obj["status"] = json!({"phase": "Active"});
    }
}

fn default_pod(obj: &mut Value) {
    let spec = &mut obj["spec"];
    let defaults = [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("securityContext", json!({})),
        ("schedulerName", json!("default-scheduler")),
        ("enableServiceLinks", json!(true)),
        ("priority", json!(0)),
        ("preemptionPolicy", json!("PreemptLowerPriority")),
    ];
    for (k, v) in defaults {
        if spec.get(k).is_none() {
            spec[k] = v;
        }
    }
    if spec.get("serviceAccountName").is_none() {
        spec["serviceAccountName"] = json!("default");
        spec["serviceAccount"] = json!("default");
    }
    if let Some(cs) = spec.get_mut("containers").and_then(Value::as_array_mut) {
        for c in cs {
            if c.get("imagePullPolicy").is_none() {
                // `:latest` or no tag means Always, as the real defaulter decides.
                let image = c["image"].as_str().unwrap_or_default();
                let tag = image
                    .rsplit('/')
                    .next()
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, t)| t);
                let always = !image.contains('@') && tag.is_none_or(|t| t == "latest");
                c["imagePullPolicy"] = json!(if always { "Always" } else { "IfNotPresent" });
            }
            for (k, v) in [
                ("terminationMessagePath", json!("/dev/termination-log")),
                ("terminationMessagePolicy", json!("File")),
                ("resources", json!({})),
            ] {
                if c.get(k).is_none() {
                    c[k] = v;
                }
            }
            // Requests default to the limits when only limits are given.
            if let Some(limits) = c.pointer("/resources/limits").cloned()
                && c.pointer("/resources/requests").is_none()
            {
                c["resources"]["requests"] = limits;
            }
        }
    }
    if let Some(vols) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        for v in vols {
            if let Some(e) = v.get_mut("emptyDir").filter(|e| e.is_null()) {
                *e = json!({});
            }
        }
    }
    let qos = qos_class(spec);
    obj["status"] = json!({"phase": "Pending", "qosClass": qos});
}

/// Guaranteed when every container has cpu and memory limits equal to its requests,
/// BestEffort when none has any, Burstable otherwise.
pub fn qos_class(spec: &Value) -> &'static str {
    let cs = spec["containers"].as_array().cloned().unwrap_or_default();
    let any = cs.iter().any(|c| {
        ["limits", "requests"]
            .iter()
            .any(|k| c["resources"][k].as_object().is_some_and(|m| !m.is_empty()))
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = cs.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let l = c["resources"]["limits"].get(r);
            let q = c["resources"]["requests"].get(r);
            l.is_some() && l.and_then(super::quantity::parse) == q.and_then(super::quantity::parse)
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// An update through the main resource keeps the stored status; one through `/status` keeps
/// everything but the status (and the labels and annotations, which it may change).
pub fn keep_on_update(old: &Value, new: &mut Value, status_subresource: bool) {
    if status_subresource {
        let status = new.get("status").cloned();
        let labels = new.pointer("/metadata/labels").cloned();
        let annotations = new.pointer("/metadata/annotations").cloned();
        let rv = new.pointer("/metadata/resourceVersion").cloned();
        *new = old.clone();
        match status {
            Some(s) => new["status"] = s,
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        for (k, v) in [
            ("labels", labels),
            ("annotations", annotations),
            ("resourceVersion", rv),
        ] {
            match v {
                Some(v) => new["metadata"][k] = v,
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(k);
                    }
                }
            }
        }
    } else {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
    }
}
