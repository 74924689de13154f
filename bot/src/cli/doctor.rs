//! `threadsmith doctor`: checks what threadsmith needs and says exactly what to fix.

use std::process::ExitCode;
use std::time::Duration;

use threadsmith_runner::Docker;
use threadsmith_runner::sandbox::kubernetes::{
    Kubernetes, KubernetesOptions, POLICY_NAME, PolicyCheck,
};

use crate::config::Config;

struct Check {
    name: &'static str,
    result: Result<String, String>,
}

pub async fn doctor(config: Config) -> anyhow::Result<ExitCode> {
    let mut checks = Vec::new();

    let git = threadsmith_runner::process::command("git")
        .arg("--version")
        .output()
        .await;
    checks.push(Check {
        name: "git",
        result: match git {
            Ok(o) if o.status.success() => {
                Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
            }
            _ => Err(
                "git is not installed on this machine. Fix: install git (apt-get install git)."
                    .into(),
            ),
        },
    });

    match config.backend() {
        Ok(crate::config::Backend::Kubernetes(options)) => {
            let pids = config
                .sandbox
                .pids
                .unwrap_or(threadsmith_runner::sandbox::Limits::default().pids);
            checks.extend(kubernetes_checks(*options, pids).await);
        }
        Ok(crate::config::Backend::Docker) => checks.extend(docker_checks(&config).await),
        Err(e) => checks.push(Check {
            name: "sandbox backend",
            result: Err(e.to_string()),
        }),
    }

    let url = config.database_url();
    let store = crate::store::open(&url).await;
    checks.push(Check {
        name: "database",
        result: match &store {
            Ok(_) => Ok(format!(
                "{} (migrations applied)",
                crate::store::redact_url(&url)
            )),
            Err(e) => Err(format!(
                "{e}. Fix: set THREADSMITH_DATABASE_URL to a writable sqlite://path.db, or a postgres://user:password@host/database the user may create tables in"
            )),
        },
    });
    if let Ok(store) = &store {
        // Informational: which bot processes share this database now.
        let now = chrono::Utc::now().timestamp_millis();
        let live: Vec<String> = store
            .workers()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|w| w.alive_until > now)
            .map(|w| format!("{} (pid {})", w.host, w.pid))
            .collect();
        checks.push(Check {
            name: "bot processes",
            result: Ok(match live.len() {
                0 => "none running on this database".to_string(),
                n => format!("{n} running: {}", live.join(", ")),
            }),
        });
    }

    checks.push(Check {
        name: "model endpoint",
        result: match config.model_config() {
            None => Err("not configured. Fix: set THREADSMITH_MODEL_BASE_URL (an OpenAI-compatible endpoint such as https://api.openai.com/v1), THREADSMITH_MODEL and THREADSMITH_MODEL_API_KEY".into()),
            Some(m) => {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()?;
                let mut req = client.get(format!("{}/models", m.base_url.trim_end_matches('/')));
                if let Some(key) = m.api_key.as_ref().filter(|k| !k.is_empty()) {
                    req = req.bearer_auth(key.expose());
                }
                match req.send().await {
                    Ok(r) if r.status().is_success() => Ok(format!("{} answers (model {})", m.base_url, m.model)),
                    Ok(r) if r.status().as_u16() == 401 || r.status().as_u16() == 403 => Err(format!(
                        "{} refused the key (HTTP {}). Fix: set THREADSMITH_MODEL_API_KEY to a valid key",
                        m.base_url,
                        r.status().as_u16()
                    )),
                    Ok(r) => Err(format!(
                        "{} answered HTTP {} to GET /models. Fix: check THREADSMITH_MODEL_BASE_URL (it usually ends in /v1)",
                        m.base_url,
                        r.status().as_u16()
                    )),
                    Err(e) => Err(format!(
                        "cannot reach {}: {}. Fix: check THREADSMITH_MODEL_BASE_URL and that the server is up",
                        m.base_url,
                        e.without_url()
                    )),
                }
            }
        },
    });

    if let Some(result) = crate::discord::content::doctor_check(&config.discord).await {
        checks.push(Check {
            name: "discord",
            result,
        });
    }

    // Approve: where approved rollouts go (checked offline: a bad key or mode is caught here).
    let repos = threadsmith_runner::RepoCache::new(config.data_dir());
    let store = crate::store::open(&url).await;
    if let Ok(store) = store {
        checks.push(Check {
            name: "approve",
            result: match crate::publish::Publisher::new(
                std::sync::Arc::new(config.clone()),
                store,
                repos,
            ) {
                Err(e) => Err(e.to_string()),
                Ok(p) => match (p.check(), p.mode()) {
                    (Err(e), _) => Err(e.to_string()),
                    (Ok(()), crate::publish::Mode::PullRequest) => Ok(format!(
                        "opens pull requests on GitHub ({})",
                        if config.github.app_id.is_some() { "as a GitHub App" } else { "with a token" }
                    )),
                    (Ok(()), crate::publish::Mode::Push) => {
                        Ok("pushes branches (push-only mode)".into())
                    }
                    (Ok(()), crate::publish::Mode::Off) => Ok(
                        "records approvals only; set THREADSMITH_GITHUB_TOKEN (or a GitHub App) to open pull requests".into(),
                    ),
                },
            },
        });
    }

    let mut ok = true;
    for c in &checks {
        match &c.result {
            Ok(text) => println!("✓ {:<15} {text}", c.name),
            Err(text) => {
                ok = false;
                println!("✗ {:<15} {text}", c.name);
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The Docker engine, the rollout image in it, and the containers threadsmith left.
async fn docker_checks(config: &Config) -> Vec<Check> {
    let mut checks = Vec::new();
    let docker = Docker::connect().await;
    checks.push(Check {
        name: "docker",
        result: match &docker {
            Ok(d) => Ok(format!(
                "engine {}",
                d.server_version().await.unwrap_or_else(|_| "?".into())
            )),
            Err(e) => Err(format!("{e}")),
        },
    });

    let image = config.image();
    checks.push(Check {
        name: "rollout image",
        result: match &docker {
            Ok(d) => match d.image_exists(&image).await {
                Ok(true) => Ok(image.clone()),
                Ok(false) => Err(format!(
                    "{image} is missing. Fix: threadsmith image build (offline, needs root and debootstrap), or threadsmith image build --dockerfile deploy/rollout.Dockerfile"
                )),
                Err(e) => Err(e.to_string()),
            },
            Err(_) => Err("needs Docker (see above)".into()),
        },
    });
    if let Ok(d) = &docker
        && let Ok(list) = d.list_managed().await
        && !list.is_empty()
    {
        checks.push(Check {
            name: "sandboxes",
            result: Ok(format!(
                "{} threadsmith container(s) exist; `threadsmith cleanup` removes those of dead processes",
                list.len()
            )),
        });
    }

    checks
}

/// The cluster (`sandbox.backend = "kubernetes"`): its API server, the namespace, and the
/// NetworkPolicy that keeps rollout pods off the network (created when missing).
async fn kubernetes_checks(options: KubernetesOptions, pids: i64) -> Vec<Check> {
    let namespace = options.namespace.clone();
    let cluster = match Kubernetes::connect(options).await {
        Ok(c) => c,
        Err(e) => {
            return vec![Check {
                name: "kubernetes",
                result: Err(format!("{e}")),
            }];
        }
    };
    let version = cluster.server_version().await;
    let reachable = version.is_ok();
    let mut checks = vec![Check {
        name: "kubernetes",
        result: version
            .map(|v| format!("API server {v}"))
            .map_err(|e| format!("{e}. Fix: check sandbox.kubernetes.kubeconfig / context, or the bot's service account")),
    }];
    if !reachable {
        return checks;
    }
    let namespace_ok = cluster.check_namespace().await;
    checks.push(Check {
        name: "rollout namespace",
        result: namespace_ok
            .as_ref()
            .map(|_| namespace.clone())
            .map_err(|e| e.to_string()),
    });
    if namespace_ok.is_err() {
        return checks;
    }
    checks.push(Check {
        name: "network policy",
        result: match cluster.ensure_policy().await {
            Ok(PolicyCheck::Present) => Ok(format!(
                "{POLICY_NAME} denies all traffic of rollout pods (enforced only by a CNI that implements NetworkPolicy: Calico, Cilium…)"
            )),
            Ok(PolicyCheck::Created) => Ok(format!("{POLICY_NAME} was missing and is now created")),
            Ok(PolicyCheck::Differs(why)) => Err(format!(
                "{POLICY_NAME} in {namespace} differs from threadsmith's: {why}. Fix: delete it (kubectl -n {namespace} delete networkpolicy {POLICY_NAME}); threadsmith creates it again"
            )),
            Err(e) => Err(e.to_string()),
        },
    });
    checks.push(Check {
        name: "process limit",
        result: Ok(format!(
            "sandbox.pids ({pids}) is not applied by Kubernetes: the node's kubelet podPidsLimit bounds each pod's processes (a fork bomb). Set podPidsLimit on the rollout nodes"
        )),
    });
    if let Ok(pods) = cluster.list_managed().await
        && !pods.is_empty()
    {
        checks.push(Check {
            name: "sandboxes",
            result: Ok(format!(
                "{} threadsmith pod(s) exist; `threadsmith cleanup` removes those of dead processes",
                pods.len()
            )),
        });
    }
    checks
}
