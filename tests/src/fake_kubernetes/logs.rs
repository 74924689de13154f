//! `pods/log`: the container's output through `docker logs` (`follow`, `tailLines`,
//! `timestamps`, `sinceSeconds`, `limitBytes`), as `text/plain`.

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;

use super::Ctx;
use super::kubelet::container_of;
use super::request::Query;
use super::resource::PODS;
use super::status::ApiError;

pub async fn handle(
    State(ctx): State<Ctx>,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    match logs(&ctx, &ns, &name, &Query::parse(q.as_deref())) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn logs(ctx: &Ctx, ns: &str, name: &str, q: &Query) -> Result<Response, ApiError> {
    let pod = ctx.store.get(&PODS, ns, name)?;
    let (cname, id) = container_of(&pod, q.get("container"))?;
    if q.flag("previous") {
        return Err(ApiError::bad_request(format!(
            "previous terminated container \"{cname}\" in pod \"{name}\" not found"
        )));
    }
    let waiting = pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == cname.as_str()))
        .and_then(|s| s["state"]["waiting"]["reason"].as_str().map(String::from));
    let (Some(kubelet), Some(id)) = (ctx.kubelet.as_ref(), id) else {
        return Err(ApiError::bad_request(format!(
            "container \"{cname}\" in pod \"{name}\" is waiting to start: {}",
            waiting.unwrap_or_else(|| "ContainerCreating".into())
        )));
    };
    let mut opts = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .follow(q.flag("follow"))
        .timestamps(q.flag("timestamps"));
    if let Some(n) = q.int("tailLines")? {
        opts = opts.tail(&n.to_string());
    }
    if let Some(s) = q.int("sinceSeconds")? {
        let since = chrono::Utc::now().timestamp() - s;
        opts = opts.since(since as i32);
    }
    let limit = q.int("limitBytes")?.map(|l| l.max(0) as usize);
    let stream = kubelet.docker().logs(&id, Some(opts.build()));
    let shutdown = ctx.shutdown.clone();
    let body = futures_util::stream::unfold(
        (stream, limit, shutdown),
        |(mut stream, left, shutdown)| async move {
            if left == Some(0) {
                return None;
            }
            let item = tokio::select! {
                _ = shutdown.cancelled() => return None,
                item = stream.next() => item?,
            };
            let mut bytes: Bytes = match item {
                Ok(
                    LogOutput::StdOut { message }
                    | LogOutput::StdErr { message }
                    | LogOutput::Console { message },
                ) => message,
                Ok(LogOutput::StdIn { .. }) => Bytes::new(),
                Err(e) => {
                    return Some((
                        Err(std::io::Error::other(e.to_string())),
                        (stream, Some(0), shutdown),
                    ));
                }
            };
            let left = left.map(|l| {
                if bytes.len() > l {
                    bytes.truncate(l);
                }
                l - bytes.len()
            });
            Some((Ok::<_, std::io::Error>(bytes), (stream, left, shutdown)))
        },
    );
    Ok((
        [(header::CONTENT_TYPE, "text/plain")],
        Body::from_stream(body),
    )
        .into_response())
}
