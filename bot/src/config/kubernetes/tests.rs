use super::*;
use crate::config::parse_repo_file;

fn load(text: &str) -> Result<Config, ConfigError> {
    let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: "threadsmith.toml".into(),
        message: e.to_string(),
    })?;
    config.check_sandbox()?;
    Ok(config)
}

#[test]
fn docker_is_the_default_and_kubernetes_settings_are_read_whole() {
    assert_eq!(Config::default().backend().unwrap(), Backend::Docker);
    let config = load(
        r#"
        [sandbox]
        backend = "kubernetes"
        memory = "2g"

        [sandbox.kubernetes]
        namespace = "rollouts"
        kubeconfig = "/etc/threadsmith/kubeconfig"
        context = "prod"
        runtime_class = "gvisor"
        node_selector = { "threadsmith.dev/rollouts" = "true" }
        image_pull_secret = "registry-credentials"
        service_account = "rollout"
        start_timeout_secs = 300

        [[sandbox.kubernetes.tolerations]]
        key = "dedicated"
        operator = "Equal"
        value = "rollouts"
        effect = "NoSchedule"
        "#,
    )
    .unwrap();
    let Backend::Kubernetes(o) = config.backend().unwrap() else {
        panic!("not kubernetes");
    };
    assert_eq!(o.namespace, "rollouts");
    assert_eq!(
        o.kubeconfig.as_deref(),
        Some(std::path::Path::new("/etc/threadsmith/kubeconfig"))
    );
    assert_eq!(o.context.as_deref(), Some("prod"));
    assert_eq!(o.runtime_class.as_deref(), Some("gvisor"));
    assert_eq!(o.node_selector["threadsmith.dev/rollouts"], "true");
    assert_eq!(o.tolerations.len(), 1);
    assert_eq!(o.tolerations[0].effect.as_deref(), Some("NoSchedule"));
    assert_eq!(o.image_pull_secret.as_deref(), Some("registry-credentials"));
    assert_eq!(o.service_account.as_deref(), Some("rollout"));
    assert_eq!(o.start_timeout, Duration::from_secs(300));
}

#[test]
fn kubernetes_without_a_section_takes_the_defaults() {
    let config = load("[sandbox]\nbackend = \"kubernetes\"\n").unwrap();
    assert_eq!(
        config.backend().unwrap(),
        Backend::Kubernetes(Box::default())
    );
}

#[test]
fn bad_settings_are_refused_with_what_to_change() {
    let cases = [
        (
            "[sandbox]\nbackend = \"podman\"\n",
            "is not `docker` or `kubernetes`",
        ),
        (
            "[sandbox]\nbackend = \"kubernetes\"\n[sandbox.kubernetes]\nnamespace = \"Rollouts\"\n",
            "not a valid namespace name",
        ),
        (
            "[sandbox]\nbackend = \"kubernetes\"\n[sandbox.kubernetes]\nruntime_class = \"g visor\"\n",
            "runtime_class `g visor`",
        ),
        (
            "[sandbox]\nbackend = \"kubernetes\"\n[sandbox.kubernetes]\nnode_selector = { \"a/b/c\" = \"x\" }\n",
            "node_selector key `a/b/c`",
        ),
        (
            "[sandbox]\nbackend = \"kubernetes\"\n[sandbox.kubernetes]\nnode_selector = { zone = \"a b\" }\n",
            "node_selector value `a b`",
        ),
        (
            "[sandbox]\nbackend = \"kubernetes\"\n[sandbox.kubernetes]\ntolerations = [{ key = \"k\", operator = \"Exists\", value = \"v\" }]\n",
            "tolerations[0]: operator Exists takes no value",
        ),
        (
            "[sandbox]\nbackend = \"kubernetes\"\n[sandbox.kubernetes]\ntolerations = [{ key = \"k\", effect = \"NoSchedule\", toleration_seconds = 5 }]\n",
            "toleration_seconds applies only to effect NoExecute",
        ),
        (
            "[sandbox]\nbackend = \"kubernetes\"\n[sandbox.kubernetes]\ntolerations = [{ operator = \"Equal\" }]\n",
            "operator Equal needs a key",
        ),
        (
            "[sandbox]\nbackend = \"kubernetes\"\n[sandbox.kubernetes]\nstart_timeout_secs = 0\n",
            "start_timeout_secs must be above 0",
        ),
        (
            "[sandbox.kubernetes]\nnamesapce = \"x\"\n",
            "unknown field `namesapce`",
        ),
        (
            "[[repos]]\nname = \"a\"\nurl = \"/a\"\nbackend = \"kubernetes\"\n",
            "the settings of repository `a`: `backend` and `kubernetes` are the bot's settings",
        ),
    ];
    for (text, expected) in cases {
        let err = load(text).expect_err(text).to_string();
        assert!(err.contains(expected), "{text}\n→ {err}");
    }
    let err = parse_repo_file("backend = \"kubernetes\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a repository's"), "{err}");
}
