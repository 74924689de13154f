//! `views.open`, `views.push` and `views.update`: modals as Slack stores and returns them.

use super::*;

pub(super) fn views_open(s: &mut SlackState, shared: &Shared, args: &Args) -> ApiResult {
    open_view(s, shared, args, "views.open")
}

pub(super) fn views_push(s: &mut SlackState, shared: &Shared, args: &Args) -> ApiResult {
    open_view(s, shared, args, "views.push")
}

pub(super) fn open_view(
    s: &mut SlackState,
    shared: &Shared,
    args: &Args,
    origin: &'static str,
) -> ApiResult {
    let trigger = str_arg(args, "trigger_id").ok_or("invalid_trigger_id")?;
    if !s.triggers.contains(&trigger) {
        return Err("invalid_trigger_id");
    }
    let view = view_arg(args)?;
    let id = format!("V{:08}", s.next_id());
    let hash = format!("1700000100.{:08x}", s.next_id());
    let current = view_json(&shared.cfg, &id, &hash, &view);
    s.views.push(StoredView {
        id,
        hash,
        origin,
        opened: view,
        current: current.clone(),
    });
    Ok(json!({"view": current}))
}

pub(super) fn views_update(s: &mut SlackState, shared: &Shared, args: &Args) -> ApiResult {
    let view = view_arg(args)?;
    let view_id = str_arg(args, "view_id");
    let external_id = str_arg(args, "external_id");
    let hash = str_arg(args, "hash");
    let new_hash = format!("1700000100.{:08x}", s.next_id());
    let stored = s
        .views
        .iter_mut()
        .rev()
        .find(|v| {
            Some(&v.id) == view_id.as_ref()
                || (external_id.is_some()
                    && v.current["external_id"].as_str() == external_id.as_deref())
        })
        .ok_or("not_found")?;
    if hash.is_some_and(|h| h != stored.hash) {
        return Err("hash_conflict");
    }
    stored.hash = new_hash;
    stored.current = view_json(&shared.cfg, &stored.id, &stored.hash, &view);
    Ok(json!({"view": stored.current}))
}

pub(super) fn view_arg(args: &Args) -> Result<Value, &'static str> {
    match json_arg(args, "view") {
        Ok(Some(view)) if view.get("type").is_some() => Ok(view),
        _ => Err("invalid_arguments"),
    }
}

/// A view as Slack returns it: what the app sent plus ids, hash and an empty state.
pub(crate) fn view_json(cfg: &FakeSlackConfig, id: &str, hash: &str, view: &Value) -> Value {
    let mut out = view.clone();
    let defaults = json!({
        "private_metadata": "",
        "callback_id": "",
        "external_id": "",
        "clear_on_close": false,
        "notify_on_close": false,
        "state": {"values": {}},
        "root_view_id": id,
        "previous_view_id": null,
    });
    for (k, v) in defaults.as_object().into_iter().flatten() {
        if out.get(k).is_none() {
            out[k] = v.clone();
        }
    }
    out["id"] = json!(id);
    out["hash"] = json!(hash);
    out["team_id"] = json!(cfg.team_id);
    out["app_id"] = json!(cfg.app_id);
    out["bot_id"] = json!(cfg.bot_id);
    out["app_installed_team_id"] = json!(cfg.team_id);
    out
}
