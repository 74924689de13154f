//! The resources the fake serves, with the names the API server uses for them in URLs, objects
//! and error messages.

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Resource {
    /// `pods`
    pub plural: &'static str,
    /// `Pod`
    pub kind: &'static str,
    /// `""` for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub verbs: &'static [&'static str],
}

pub const PODS: Resource = Resource {
    plural: "pods",
    kind: "Pod",
    group: "",
    version: "v1",
    namespaced: true,
    short_names: &["po"],
    verbs: &[
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ],
};

pub const NAMESPACES: Resource = Resource {
    plural: "namespaces",
    kind: "Namespace",
    group: "",
    version: "v1",
    namespaced: false,
    short_names: &["ns"],
    verbs: &[
        "create", "delete", "get", "list", "patch", "update", "watch",
    ],
};

pub const NETWORK_POLICIES: Resource = Resource {
    plural: "networkpolicies",
    kind: "NetworkPolicy",
    group: "networking.k8s.io",
    version: "v1",
    namespaced: true,
    short_names: &["netpol"],
    verbs: &[
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ],
};

/// Not served: the kind that query-parameter errors of lists and watches name.
pub const LIST_OPTIONS: Resource = Resource {
    plural: "listoptions",
    kind: "ListOptions",
    group: "meta.k8s.io",
    version: "v1",
    namespaced: false,
    short_names: &[],
    verbs: &[],
};

/// Not served: the kind that query-parameter errors of patches name.
pub const PATCH_OPTIONS: Resource = Resource {
    plural: "patchoptions",
    kind: "PatchOptions",
    group: "meta.k8s.io",
    version: "v1",
    namespaced: false,
    short_names: &[],
    verbs: &[],
};

impl Resource {
    /// `v1` or `networking.k8s.io/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods` or `networkpolicies.networking.k8s.io`, as NotFound and Conflict messages name it.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `details` of a Status about one object: name, group (omitted for core), kind (the plural).
    pub fn details(&self, name: &str) -> Value {
        let mut d = json!({"name": name, "kind": self.plural});
        if !self.group.is_empty() {
            d["group"] = json!(self.group);
        }
        d
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The entry of an `APIResourceList` (discovery).
    pub fn discovery(&self) -> Value {
        json!({
            "name": self.plural,
            "singularName": self.kind.to_lowercase(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": self.verbs,
            "shortNames": self.short_names,
        })
    }
}
