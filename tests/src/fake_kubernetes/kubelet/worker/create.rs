//! Creating a pod's containers: images checked, volumes made, containers created and started,
//! and the pod's network applied (moved out of `worker.rs` to keep each impl block small).

use super::*;

impl Pod {
    /// Checks images, creates the containers, applies the network and starts them. On a
    /// failure the status says why (waiting reason) and the pod stays Pending.
    pub(super) async fn create(&mut self, spec: &Value) -> Result<(), &'static str> {
        let cspecs: Vec<Value> = spec["spec"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut image_users = Vec::new();
        for (i, c) in cspecs.iter().enumerate() {
            let image = c["image"].as_str().unwrap_or_default();
            let policy = c["imagePullPolicy"].as_str().unwrap_or("IfNotPresent");
            let local = self.k.docker.inspect_image(image).await.ok();
            let failure = match (policy, &local) {
                // The fake reaches no registry: a pull always fails.
                ("Always", _) | ("IfNotPresent", None) => Some((
                    "ErrImagePull",
                    format!(
                        "failed to pull and unpack image \"{image}\": pull access denied, repository does not exist or may require authorization (the fake kubelet reaches no registry)"
                    ),
                )),
                ("Never", None) => Some((
                    "ErrImageNeverPull",
                    format!("Container image \"{image}\" is not present with pull policy of Never"),
                )),
                _ => None,
            };
            if let Some((reason, message)) = failure {
                self.containers[i].state = State::waiting(reason, Some(message));
                let _reported = self.report(false);
                if reason == "ErrImagePull" {
                    tokio::time::sleep(PULL_BACKOFF).await;
                    self.containers[i].state = State::waiting(
                        "ImagePullBackOff",
                        Some(format!("Back-off pulling image \"{image}\"")),
                    );
                    let _reported = self.report(false);
                }
                return Err("image");
            }
            let Some(info) = local else {
                return Err("image");
            };
            self.containers[i].image_id = info.id.clone();
            image_users.push(info.config.and_then(|c| c.user).unwrap_or_default());
        }
        let isolated = network::isolated(&self.k.store, spec);
        let uid = spec["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let prefix = format!("fk-{}-{}", self.k.instance, &uid[..uid.len().min(8)]);
        if let Err(e) = self.create_volumes(spec, &prefix).await {
            self.containers[0].state =
                State::waiting("CreateContainerConfigError", Some(e.to_string()));
            let _reported = self.report(false);
            return Err("volumes");
        }
        for (i, c) in cspecs.iter().enumerate() {
            let labels = self
                .k
                .labels(&self.ns, &self.name, &self.containers[i].name);
            let mut body = match container::build(
                spec,
                c,
                self.k.pod_pids_limit,
                &image_users[i],
                self.pod_ip.as_deref().unwrap_or(""),
                &prefix,
                labels,
            ) {
                Ok(b) => b,
                Err(message) => {
                    self.containers[i].state =
                        State::waiting("CreateContainerConfigError", Some(message));
                    let _reported = self.report(false);
                    return Err("config");
                }
            };
            if let Some(hc) = body.host_config.as_mut() {
                hc.network_mode = Some(match self.containers.first().and_then(|f| f.id.clone()) {
                    Some(first) if i > 0 => format!("container:{first}"),
                    _ => "bridge".to_string(),
                });
            }
            if i > 0 {
                body.hostname = None;
            }
            let cname = format!(
                "fk-{}-{}-{}-{}-{}",
                self.k.instance,
                self.ns,
                self.name,
                self.containers[i].name,
                &uid[..uid.len().min(8)]
            );
            let opts = CreateContainerOptionsBuilder::default()
                .name(&cname)
                .build();
            match self.k.docker.create_container(Some(opts), body).await {
                Ok(created) => self.containers[i].id = Some(created.id),
                Err(e) => {
                    self.containers[i].state =
                        State::waiting("CreateContainerError", Some(e.to_string()));
                    let _reported = self.report(false);
                    return Err("create");
                }
            }
            if i == 0 {
                self.connected = true;
                if isolated {
                    self.set_network(false).await;
                }
            }
        }
        for i in 0..self.containers.len() {
            if let Err(e) = self.start(i).await {
                self.containers[i].state = State::waiting("RunContainerError", Some(e.to_string()));
                let _reported = self.report(false);
                return Err("start");
            }
        }
        Ok(())
    }

    /// One Docker volume on a tmpfs per emptyDir, labelled as the fake's.
    pub(super) async fn create_volumes(
        &mut self,
        spec: &Value,
        prefix: &str,
    ) -> Result<(), bollard::errors::Error> {
        let memory = spec
            .pointer("/spec/containers/0/resources/limits/memory")
            .and_then(super::super::super::quantity::bytes);
        for vol in spec["spec"]["volumes"].as_array().into_iter().flatten() {
            let Some(vname) = vol["name"]
                .as_str()
                .filter(|_| vol.get("emptyDir").is_some())
            else {
                continue;
            };
            let size = container::empty_dir_size(vol, memory);
            let name = container::volume_name(prefix, vname);
            let request = VolumeCreateRequest {
                name: Some(name.clone()),
                driver: Some("local".into()),
                driver_opts: Some(HashMap::from([
                    ("type".to_string(), "tmpfs".to_string()),
                    ("device".to_string(), "tmpfs".to_string()),
                    (
                        "o".to_string(),
                        format!("size={size},mode=1777,nosuid,nodev"),
                    ),
                ])),
                labels: Some(
                    self.k
                        .labels(&self.ns, &self.name, &format!("volume-{vname}")),
                ),
                ..Default::default()
            };
            self.k.docker.create_volume(request).await?;
            self.volumes.push(name);
        }
        Ok(())
    }

    pub(super) async fn start(&mut self, i: usize) -> Result<(), bollard::errors::Error> {
        let Some(id) = self.containers[i].id.clone() else {
            return Ok(());
        };
        self.k.docker.start_container(&id, None).await?;
        let info = self
            .k
            .docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await?;
        if i == 0 {
            let bridge_ip = info
                .network_settings
                .and_then(|n| n.networks)
                .and_then(|n| n.get("bridge").and_then(|b| b.ip_address.clone()))
                .filter(|ip| !ip.is_empty());
            // A pod off every network still has an address on a real node.
            self.pod_ip = Some(
                bridge_ip.unwrap_or_else(|| format!("10.244.0.{}", 2 + rand::random_range(0..250))),
            );
            self.sandbox_ready = true;
        }
        let started_at = info.state.and_then(|s| s.started_at).unwrap_or_else(now);
        self.containers[i].state = State::Running { started_at };
        let _reported = self.report(false);
        Ok(())
    }

    pub(super) async fn set_network(&mut self, connected: bool) {
        let Some(id) = self.containers.first().and_then(|c| c.id.clone()) else {
            return;
        };
        if connected == self.connected {
            return;
        }
        let done = if connected {
            self.k
                .docker
                .connect_network(
                    "bridge",
                    NetworkConnectRequest {
                        container: id,
                        endpoint_config: None,
                    },
                )
                .await
        } else {
            self.k
                .docker
                .disconnect_network(
                    "bridge",
                    NetworkDisconnectRequest {
                        container: id,
                        force: Some(true),
                    },
                )
                .await
        };
        match done {
            Ok(()) => self.connected = connected,
            Err(e) => tracing::warn!(error = %e, pod = %self.name, "changing a fake pod's network"),
        }
    }
}
