//! Label selectors (the query-string syntax of k8s.io/apimachinery `labels.Parse`, and the
//! `LabelSelector` object of NetworkPolicy's `podSelector`) and field selectors.

use std::collections::BTreeMap;

use serde_json::Value;

use super::validate;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Exists,
    DoesNotExist,
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Gt(i64),
    Lt(i64),
}

#[derive(Debug, Clone, PartialEq)]
struct Requirement {
    key: String,
    op: Op,
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    reqs: Vec<Requirement>,
    /// A `LabelSelector` object that can match nothing (never produced by the string syntax).
    nothing: bool,
}

pub type Labels = BTreeMap<String, String>;

/// The labels of an object (`metadata.labels`).
pub fn labels_of(obj: &Value) -> Labels {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter. The error is the API server's message.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let mut reqs = Vec::new();
        p.skip_ws();
        if p.at_end() {
            return Ok(Self::default());
        }
        loop {
            reqs.push(p.requirement()?);
            p.skip_ws();
            if p.at_end() {
                break;
            }
            if !p.eat(b',') {
                return Err(format!(
                    "unable to parse requirement: found '{}', expected: ',' or 'end of string'",
                    p.rest_token()
                ));
            }
        }
        for r in &reqs {
            check_key(&r.key)?;
            let values: Vec<&String> = match &r.op {
                Op::Equals(v) | Op::NotEquals(v) => vec![v],
                Op::In(vs) | Op::NotIn(vs) => vs.iter().collect(),
                _ => vec![],
            };
            for v in values {
                if let Err(e) = validate::label_value(v) {
                    return Err(format!(
                        "unable to parse requirement: values[0][{}]: Invalid value: {v:?}: {e}",
                        r.key
                    ));
                }
            }
        }
        Ok(Self {
            reqs,
            nothing: false,
        })
    }

    /// From a `LabelSelector` object (`matchLabels`, `matchExpressions`), as
    /// `metav1.LabelSelectorAsSelector` converts it. The error names the offending field.
    pub fn from_object(sel: &Value) -> Result<Self, String> {
        let mut reqs = Vec::new();
        if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in m {
                let v = v.as_str().ok_or("matchLabels values must be strings")?;
                reqs.push(Requirement {
                    key: k.clone(),
                    op: Op::Equals(v.to_string()),
                });
            }
        }
        if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
                let values: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                let op = match e
                    .get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                {
                    "In" if !values.is_empty() => Op::In(values),
                    "NotIn" if !values.is_empty() => Op::NotIn(values),
                    "Exists" if values.is_empty() => Op::Exists,
                    "DoesNotExist" if values.is_empty() => Op::DoesNotExist,
                    "In" | "NotIn" => {
                        return Err("must be specified when `operator` is 'In' or 'NotIn'".into());
                    }
                    "Exists" | "DoesNotExist" => {
                        return Err(
                            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                                .into(),
                        );
                    }
                    other => {
                        return Err(format!("{other:?} is not a valid label selector operator"));
                    }
                };
                reqs.push(Requirement {
                    key: key.to_string(),
                    op,
                });
            }
        }
        for r in &reqs {
            check_key(&r.key)?;
        }
        Ok(Self {
            reqs,
            nothing: false,
        })
    }

    /// A selector that selects nothing (a null `LabelSelector`).
    pub fn nothing() -> Self {
        Self {
            reqs: Vec::new(),
            nothing: true,
        }
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        !self.nothing && self.reqs.iter().all(|r| r.matches(labels))
    }
}

fn check_key(key: &str) -> Result<(), String> {
    validate::qualified_name(key)
        .map_err(|e| format!("unable to parse requirement: key: Invalid value: {key:?}: {e}"))
}

impl Requirement {
    fn matches(&self, labels: &Labels) -> bool {
        let got = labels.get(&self.key);
        match &self.op {
            Op::Exists => got.is_some(),
            Op::DoesNotExist => got.is_none(),
            Op::Equals(v) => got == Some(v),
            Op::NotEquals(v) => got != Some(v),
            Op::In(vs) => got.is_some_and(|g| vs.contains(g)),
            Op::NotIn(vs) => got.is_none_or(|g| !vs.contains(g)),
            Op::Gt(n) => got
                .and_then(|g| g.parse::<i64>().ok())
                .is_some_and(|g| g > *n),
            Op::Lt(n) => got
                .and_then(|g| g.parse::<i64>().ok())
                .is_some_and(|g| g < *n),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn eat_str(&mut self, t: &str) -> bool {
        if self.s[self.i..].starts_with(t.as_bytes()) {
            self.i += t.len();
            true
        } else {
            false
        }
    }

    /// A run of identifier characters (anything but whitespace and the selector's punctuation).
    fn word(&mut self) -> String {
        let start = self.i;
        while self.i < self.s.len() {
            let c = self.s[self.i];
            if c.is_ascii_whitespace() || b",=!()<>".contains(&c) {
                break;
            }
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn rest_token(&mut self) -> String {
        let w = self.word();
        if w.is_empty() {
            self.s
                .get(self.i)
                .map(|c| (*c as char).to_string())
                .unwrap_or_default()
        } else {
            w
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        self.skip_ws();
        if self.eat(b'!') {
            self.skip_ws();
            let key = self.word();
            if key.is_empty() {
                return Err(format!(
                    "unable to parse requirement: found '{}', expected: identifier",
                    self.rest_token()
                ));
            }
            return Ok(Requirement {
                key,
                op: Op::DoesNotExist,
            });
        }
        let key = self.word();
        if key.is_empty() {
            return Err(format!(
                "unable to parse requirement: found '{}', expected: !, identifier, or 'end of string'",
                self.rest_token()
            ));
        }
        self.skip_ws();
        if self.at_end() || self.s[self.i] == b',' {
            return Ok(Requirement {
                key,
                op: Op::Exists,
            });
        }
        let op = if self.eat_str("==") || self.eat(b'=') {
            Op::Equals(self.single_value()?)
        } else if self.eat_str("!=") {
            Op::NotEquals(self.single_value()?)
        } else if self.eat(b'>') {
            Op::Gt(self.number()?)
        } else if self.eat(b'<') {
            Op::Lt(self.number()?)
        } else {
            let w = self.word();
            match w.as_str() {
                "in" => Op::In(self.set()?),
                "notin" => Op::NotIn(self.set()?),
                _ => {
                    return Err(format!(
                        "unable to parse requirement: found '{w}', expected: in, notin, =, ==, !=, gt, lt"
                    ));
                }
            }
        };
        Ok(Requirement { key, op })
    }

    fn single_value(&mut self) -> Result<String, String> {
        self.skip_ws();
        Ok(self.word())
    }

    fn number(&mut self) -> Result<i64, String> {
        let v = self.single_value()?;
        v.parse()
            .map_err(|_| format!("unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer, got {v:?}"))
    }

    fn set(&mut self) -> Result<Vec<String>, String> {
        self.skip_ws();
        if !self.eat(b'(') {
            return Err(format!(
                "unable to parse requirement: found '{}', expected: '('",
                self.rest_token()
            ));
        }
        let mut values = Vec::new();
        loop {
            self.skip_ws();
            values.push(self.word());
            self.skip_ws();
            if self.eat(b')') {
                return Ok(values);
            }
            if !self.eat(b',') {
                return Err(format!(
                    "unable to parse requirement: found '{}', expected: ',', or ')'",
                    self.rest_token()
                ));
            }
        }
    }
}

/// A field selector: `key=value`, `key==value`, `key!=value`, comma-separated, over the fields a
/// resource supports (`metadata.name`, `metadata.namespace`, and for pods `status.phase`,
/// `spec.nodeName`, `spec.restartPolicy`).
#[derive(Debug, Clone, Default)]
pub struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

impl FieldSelector {
    pub fn parse(text: &str, supported: &[&str]) -> Result<Self, String> {
        let mut terms = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, eq, value) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{text}'; can't understand '{part}'"
                ));
            };
            let key = key.trim();
            if !supported.contains(&key) {
                return Err(format!("field label not supported: {key}"));
            }
            terms.push((key.to_string(), eq, value.trim().to_string()));
        }
        Ok(Self { terms })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|(key, eq, want)| {
            let pointer = format!("/{}", key.replace('.', "/"));
            let got = obj.pointer(&pointer).and_then(Value::as_str).unwrap_or("");
            (got == want) == *eq
        })
    }
}
