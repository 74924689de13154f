//! Files: `files.getUploadURLExternal`, the upload itself, `files.completeUploadExternal`.

use super::*;

pub(super) fn upload_url(s: &mut SlackState, shared: &Shared, args: &Args) -> ApiResult {
    let filename = str_arg(args, "filename").ok_or("invalid_arguments")?;
    str_arg(args, "length")
        .and_then(|l| l.parse::<u64>().ok())
        .ok_or("invalid_arguments")?;
    let id = format!("F{:08}", s.next_id());
    s.uploads.insert(
        id.clone(),
        Upload {
            filename,
            bytes: None,
        },
    );
    Ok(json!({
        "upload_url": format!("http://{}/upload/{id}", shared.api_addr),
        "file_id": id,
    }))
}

pub(super) fn complete_upload(s: &mut SlackState, shared: &Shared, args: &Args) -> ApiResult {
    let cfg = &shared.cfg;
    let Ok(Some(Value::Array(wanted))) = json_arg(args, "files") else {
        return Err("invalid_arguments");
    };
    let channel = str_arg(args, "channel_id").or_else(|| match args.get("channels") {
        Some(Value::String(csv)) => csv.split(',').next().map(String::from),
        Some(Value::Array(list)) => list.first().and_then(Value::as_str).map(String::from),
        _ => None,
    });
    let thread_ts = str_arg(args, "thread_ts");
    let blocks = json_arg(args, "blocks").map_err(|_| "invalid_blocks")?;
    let mut files = Vec::new();
    for entry in &wanted {
        let id = entry["id"].as_str().ok_or("invalid_arguments")?;
        let upload = s.uploads.get(id).ok_or("file_not_found")?;
        let bytes = upload.bytes.clone().ok_or("file_not_found")?;
        files.push(File {
            id: id.into(),
            filename: upload.filename.clone(),
            title: entry["title"].as_str().map(String::from),
            bytes,
            channel: channel.clone(),
            thread_ts: thread_ts.clone(),
        });
    }
    for f in &files {
        s.uploads.remove(&f.id);
    }
    s.files.extend(files.iter().cloned());
    let answer: Vec<Value> = files.iter().map(|f| file_json(cfg, f)).collect();
    if let Some(channel) = channel {
        let ts = s.next_ts();
        s.insert(Message {
            channel,
            ts,
            thread_ts,
            user: cfg.bot_user_id.clone(),
            bot_id: Some(cfg.bot_id.clone()),
            text: str_arg(args, "initial_comment").unwrap_or_default(),
            blocks,
            edits: 0,
            files,
            reactions: Vec::new(),
        });
    }
    Ok(json!({"files": answer}))
}

pub(super) async fn upload(
    State(shared): State<Arc<Shared>>,
    Path(file_id): Path<String>,
    body: Bytes,
) -> axum::response::Response {
    let len = body.len();
    let known = shared.mutate(|s| match s.uploads.get_mut(&file_id) {
        Some(upload) => {
            upload.bytes = Some(body.to_vec());
            true
        }
        None => false,
    });
    if known {
        (
            StatusCode::OK,
            [(CONTENT_TYPE, "text/plain")],
            format!("OK - {len}"),
        )
            .into_response()
    } else {
        (StatusCode::NOT_FOUND, "no such upload").into_response()
    }
}

pub(super) fn file_json(cfg: &FakeSlackConfig, f: &File) -> Value {
    json!({
        "id": f.id,
        "created": 1_700_000_100,
        "timestamp": 1_700_000_100,
        "name": f.filename,
        "title": f.title.as_deref().unwrap_or(&f.filename),
        "user": cfg.bot_user_id,
        "size": f.bytes.len(),
    })
}
