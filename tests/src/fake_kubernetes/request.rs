//! Reading a request as the API server does: query parameters (repeatable), the body's content
//! type, and decoding the body into an object of the URL's kind.

use axum::http::HeaderMap;
use serde_json::Value;

use super::resource::Resource;
use super::status::ApiError;

/// Query parameters in their order; a parameter may repeat (`command=` of exec).
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        Self(
            url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean parameter as the API server's conversion reads it (`true`/`1`, else false).
    pub fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v == "true" || v == "1")
    }

    /// An integer parameter; a malformed one is a 400, as the query decoder answers.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("strconv.ParseInt: parsing {v:?}: invalid syntax"))
            }),
        }
    }

    /// `dryRun=All` (any other value is refused as the server does).
    pub fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "dryRun: Unsupported value: {other:?}: supported values: \"All\""
            ))),
        }
    }
}

/// The media type of the body, without parameters such as `charset`.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The media types POST and PUT accept; the fake decodes JSON only (every Kubernetes client
/// library, kube-rs included, sends JSON).
const BODY_TYPES: [&str; 4] = [
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/cbor",
];

/// Decodes a POST or PUT body into an object of `res`'s kind.
pub fn decode_object(res: &Resource, headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let ct = content_type(headers);
    if ct != "application/json" {
        return Err(ApiError::unsupported_media_type(&BODY_TYPES));
    }
    decode_json(res, body)
}

/// Parses JSON into an object of `res`'s kind; `apiVersion` and `kind`, when given, must match.
pub fn decode_json(res: &Resource, body: &[u8]) -> Result<Value, ApiError> {
    let cannot = |e: &dyn std::fmt::Display| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            res.kind, res.version, res.kind
        ))
    };
    let mut obj: Value = serde_json::from_slice(body).map_err(|e| cannot(&e))?;
    if !obj.is_object() {
        return Err(cannot(
            &"json: cannot unmarshal into Go value of type struct",
        ));
    }
    let want = res.api_version();
    match obj.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v != want => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({want})"
            )));
        }
        _ => obj["apiVersion"] = Value::String(want),
    }
    match obj.get("kind").and_then(Value::as_str) {
        Some(k) if k != res.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                res.kind
            )));
        }
        _ => obj["kind"] = Value::String(res.kind.into()),
    }
    match obj.get("metadata") {
        None | Some(Value::Null) => obj["metadata"] = Value::Object(Default::default()),
        Some(Value::Object(_)) => {}
        Some(_) => {
            return Err(cannot(
                &"json: cannot unmarshal into Go struct field .metadata of type v1.ObjectMeta",
            ));
        }
    }
    for (field, pointer) in [
        ("metadata.labels", "/metadata/labels"),
        ("metadata.annotations", "/metadata/annotations"),
    ] {
        if let Some(v) = obj.pointer(pointer) {
            let ok = v.is_null()
                || v.as_object()
                    .is_some_and(|m| m.values().all(Value::is_string));
            if !ok {
                return Err(cannot(&format!(
                    "json: cannot unmarshal into Go struct field ObjectMeta.{field} of type map[string]string"
                )));
            }
        }
    }
    for list in ["/spec/containers", "/spec/volumes"] {
        if let Some(v) = obj.pointer(list)
            && !(v.is_null() || v.as_array().is_some_and(|a| a.iter().all(Value::is_object)))
        {
            return Err(cannot(&format!(
                "json: cannot unmarshal into Go struct field {} of type []",
                &list[1..].replace('/', ".")
            )));
        }
    }
    Ok(obj)
}
