//! The fake's etcd: objects as JSON under (resource, namespace, name), one global
//! resourceVersion counter, a bounded history of changes for watches, and listeners (watch
//! streams and the fake kubelet) told of every change in order.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::resource::{NAMESPACES, Resource};
use super::status::ApiError;

/// How many changes a watch can resume from; older resourceVersions get 410 Gone.
const HISTORY: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, with the object as it is after it (as it was, for a deletion).
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub kind: EventType,
    pub res: Resource,
    pub obj: Value,
    /// The object before a modification (to tell when it entered or left a selector).
    pub prev: Option<Value>,
}

type Key = (&'static str, String, String);

struct State {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Event>,
    /// Changes at or before this resourceVersion are no longer in `history`.
    compacted: u64,
    listeners: Vec<mpsc::UnboundedSender<Event>>,
}

#[derive(Clone)]
pub struct Store {
    state: Arc<Mutex<State>>,
}

/// Where a listener starts: what was already there, and the changes after it.
pub struct Subscription {
    pub rv: u64,
    pub backlog: Vec<Event>,
    pub events: mpsc::UnboundedReceiver<Event>,
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn rv_of(obj: &Value) -> Option<u64> {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

pub fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub fn namespace_of(obj: &Value) -> &str {
    obj.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

impl Store {
    pub fn new(namespaces: &[&str]) -> Self {
        let store = Self {
            state: Arc::new(Mutex::new(State {
                rv: 1,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                compacted: 0,
                listeners: Vec::new(),
            })),
        };
        for ns in namespaces {
            let obj = json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            });
            // A fresh store has none of them.
            let _created = store.create(&NAMESPACES, "", obj);
        }
        store
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    pub fn get(&self, res: &Resource, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.lock()
            .objects
            .get(&(res.plural, ns.to_string(), name.to_string()))
            .cloned()
            .ok_or_else(|| ApiError::not_found(res, name))
    }

    /// Every object of `res` (in `ns`, or all namespaces), ordered by namespace and name, with
    /// the resourceVersion of the moment.
    pub fn list(&self, res: &Resource, ns: Option<&str>) -> (Vec<Value>, u64) {
        let st = self.lock();
        let items = st
            .objects
            .iter()
            .filter(|((r, n, _), _)| *r == res.plural && ns.is_none_or(|ns| ns == n))
            .map(|(_, v)| v.clone())
            .collect();
        (items, st.rv)
    }

    /// Stores a new object: uid, creationTimestamp, resourceVersion, generation are set here.
    pub fn create(&self, res: &Resource, ns: &str, mut obj: Value) -> Result<Value, ApiError> {
        let name = name_of(&obj).to_string();
        let mut st = self.lock();
        if res.namespaced
            && !st
                .objects
                .contains_key(&(NAMESPACES.plural, String::new(), ns.to_string()))
        {
            return Err(ApiError::not_found(&NAMESPACES, ns));
        }
        let key = (res.plural, ns.to_string(), name.clone());
        if st.objects.contains_key(&key) {
            return Err(ApiError::already_exists(res, &name));
        }
        st.rv += 1;
        let meta = &mut obj["metadata"];
        if res.namespaced {
            meta["namespace"] = json!(ns);
        }
        meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
        meta["creationTimestamp"] = json!(now());
        meta["resourceVersion"] = json!(st.rv.to_string());
        meta["generation"] = json!(1);
        st.objects.insert(key, obj.clone());
        emit(&mut st, EventType::Added, res, obj.clone(), None);
        Ok(obj)
    }

    /// Replaces an object. With `expected_rv`, a stale one is a 409 Conflict. The generation
    /// goes up when `spec` changed; metadata the server owns is kept.
    pub fn replace(
        &self,
        res: &Resource,
        ns: &str,
        name: &str,
        mut obj: Value,
        expected_rv: Option<u64>,
    ) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let key = (res.plural, ns.to_string(), name.to_string());
        let Some(old) = st.objects.get(&key).cloned() else {
            return Err(ApiError::not_found(res, name));
        };
        if expected_rv.is_some_and(|rv| Some(rv) != rv_of(&old)) {
            return Err(ApiError::conflict(res, name));
        }
        for owned in [
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "namespace",
            "name",
        ] {
            match old["metadata"].get(owned) {
                Some(v) => obj["metadata"][owned] = v.clone(),
                None => {
                    if let Some(m) = obj["metadata"].as_object_mut() {
                        m.remove(owned);
                    }
                }
            }
        }
        if obj == old {
            // Nothing changed: the API server answers with the object and writes nothing.
            return Ok(old);
        }
        if old.get("spec") != obj.get("spec") {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
            obj["metadata"]["generation"] = json!(g + 1);
        }
        st.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(st.rv.to_string());
        st.objects.insert(key, obj.clone());
        emit(&mut st, EventType::Modified, res, obj.clone(), Some(old));
        Ok(obj)
    }

    /// Changes an object in place under the lock (for the server's own writes: status,
    /// deletionTimestamp). `None` from `f` means no change.
    pub fn modify(
        &self,
        res: &Resource,
        ns: &str,
        name: &str,
        f: impl FnOnce(&Value) -> Option<Value>,
    ) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let key = (res.plural, ns.to_string(), name.to_string());
        let Some(old) = st.objects.get(&key).cloned() else {
            return Err(ApiError::not_found(res, name));
        };
        let Some(mut obj) = f(&old) else {
            return Ok(old);
        };
        st.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(st.rv.to_string());
        st.objects.insert(key, obj.clone());
        emit(&mut st, EventType::Modified, res, obj.clone(), Some(old));
        Ok(obj)
    }

    /// Removes an object for good (DELETED); the event carries a new resourceVersion.
    pub fn remove(&self, res: &Resource, ns: &str, name: &str) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let key = (res.plural, ns.to_string(), name.to_string());
        let Some(mut obj) = st.objects.remove(&key) else {
            return Err(ApiError::not_found(res, name));
        };
        st.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(st.rv.to_string());
        emit(&mut st, EventType::Deleted, res, obj.clone(), None);
        Ok(obj)
    }

    /// Listens to changes of `res` after `from` (`None`: from now, with the current objects as
    /// the backlog of ADDED events). `Err(oldest)` when `from` is older than the history kept.
    pub fn subscribe(&self, res: &Resource, from: Option<u64>) -> Result<Subscription, u64> {
        let mut st = self.lock();
        let backlog = match from {
            Some(rv) if rv < st.compacted => return Err(st.compacted),
            Some(rv) => st
                .history
                .iter()
                .filter(|e| e.rv > rv && e.res == *res)
                .cloned()
                .collect(),
            None => st
                .objects
                .iter()
                .filter(|((r, _, _), _)| *r == res.plural)
                .map(|(_, obj)| Event {
                    rv: rv_of(obj).unwrap_or(0),
                    kind: EventType::Added,
                    res: *res,
                    obj: obj.clone(),
                    prev: None,
                })
                .collect(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        st.listeners.push(tx);
        Ok(Subscription {
            rv: st.rv,
            backlog,
            events: rx,
        })
    }

    /// Forgets the history of changes (as etcd's compaction does): watches from a
    /// resourceVersion before now get 410 Gone.
    pub fn compact(&self) {
        let mut st = self.lock();
        st.history.clear();
        st.compacted = st.rv;
    }

    /// The oldest resourceVersion a watch may still start from.
    pub fn compacted(&self) -> u64 {
        self.lock().compacted
    }
}

fn emit(st: &mut State, kind: EventType, res: &Resource, obj: Value, prev: Option<Value>) {
    let ev = Event {
        rv: st.rv,
        kind,
        res: *res,
        obj,
        prev,
    };
    st.history.push_back(ev.clone());
    if st.history.len() > HISTORY
        && let Some(old) = st.history.pop_front()
    {
        st.compacted = old.rv;
    }
    st.listeners.retain(|l| l.send(ev.clone()).is_ok());
}
