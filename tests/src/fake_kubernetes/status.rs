//! `Status` error bodies, shaped as the API server returns them (k8s.io/apimachinery
//! `pkg/api/errors`): `kind`, `apiVersion`, empty `metadata`, `status: "Failure"`, `message`,
//! `reason`, `details` and `code`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::resource::Resource;

/// One field error of an `Invalid` answer (`details.causes[]`).
#[derive(Debug, Clone)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueForbidden`, `FieldValueNotSupported`, …
    pub reason: &'static str,
    pub field: String,
    /// The cause's own message, e.g. `Required value` or `Invalid value: "X": …`.
    pub message: String,
}

impl Cause {
    pub fn required(field: impl Into<String>) -> Self {
        Self {
            reason: "FieldValueRequired",
            field: field.into(),
            message: "Required value".into(),
        }
    }

    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Self {
        Self {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: {}: {detail}", go_value(value)),
        }
    }

    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        Self {
            reason: "FieldValueForbidden",
            field: field.into(),
            message: format!("Forbidden: {detail}"),
        }
    }

    pub fn not_supported(field: impl Into<String>, value: &Value, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
        Self {
            reason: "FieldValueNotSupported",
            field: field.into(),
            message: format!(
                "Unsupported value: {}: supported values: {}",
                go_value(value),
                list.join(", ")
            ),
        }
    }

    /// `field: message`, as the aggregate message lists it.
    fn line(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

/// A value as Go's `%#v`-ish rendering in field errors shows it: strings quoted, numbers bare.
fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// An error answer of the fake API server.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn with_code(code: u16, reason: &'static str, message: String) -> Self {
        Self::with_details(code, reason, message, None)
    }

    fn with_details(
        code: u16,
        reason: &'static str,
        message: String,
        details: Option<Value>,
    ) -> Self {
        Self {
            code,
            reason,
            message,
            details,
        }
    }

    pub fn not_found(res: &Resource, name: &str) -> Self {
        Self::with_details(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", res.qualified()),
            Some(res.details(name)),
        )
    }

    pub fn already_exists(res: &Resource, name: &str) -> Self {
        Self::with_details(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", res.qualified()),
            Some(res.details(name)),
        )
    }

    pub fn conflict(res: &Resource, name: &str) -> Self {
        Self::with_details(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                res.qualified()
            ),
            Some(res.details(name)),
        )
    }

    /// A failed precondition of a delete (`preconditions.uid` / `.resourceVersion`).
    pub fn precondition(res: &Resource, name: &str, what: &str, want: &str, have: &str) -> Self {
        Self::with_details(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: {what} in precondition: {want}, {what} in object meta: {have}",
                res.qualified()
            ),
            Some(res.details(name)),
        )
    }

    /// 422: `<Kind>[.group] "<name>" is invalid: <causes>`; `details.kind` is the Kind here.
    pub fn invalid(res: &Resource, name: &str, causes: Vec<Cause>) -> Self {
        let lines: Vec<String> = causes.iter().map(Cause::line).collect();
        let summary = if lines.len() == 1 {
            lines[0].clone()
        } else {
            format!("[{}]", lines.join(", "))
        };
        let kind = if res.group.is_empty() {
            res.kind.to_string()
        } else {
            format!("{}.{}", res.kind, res.group)
        };
        let mut details = json!({"kind": res.kind});
        if !name.is_empty() {
            details["name"] = json!(name);
        }
        if !res.group.is_empty() {
            details["group"] = json!(res.group);
        }
        details["causes"] = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        Self::with_details(
            422,
            "Invalid",
            format!("{kind} \"{name}\" is invalid: {summary}"),
            Some(details),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::with_details(400, "BadRequest", message.into(), None)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::with_details(405, "MethodNotAllowed", message.into(), None)
    }

    pub fn unsupported_media_type(accepted: &[&str]) -> Self {
        Self::with_details(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
            None,
        )
    }

    /// 410 of a watch or list from a resourceVersion the server no longer has.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::with_details(410, "Expired", message.into(), None)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::with_details(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
            Some(json!({"causes": [{"message": "fake-kubernetes"}]})),
        )
    }

    /// The `Status` object itself.
    pub fn body(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (code, Json(self.body())).into_response()
    }
}

/// The `Status` a successful delete of a collection-less object answers with (kind `Status`,
/// `status: "Success"`).
pub fn success(res: &Resource, name: &str, uid: &str) -> Value {
    let mut details = res.details(name);
    details["uid"] = json!(uid);
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}
