//! Leader election on a `coordination.k8s.io/v1` Lease. Only the holder reconciles and writes.
//! The holder renews every third of the lease duration; if it cannot renew before the lease
//! would expire (or finds another holder), it reports the loss and the process exits, so two
//! replicas never write at once. On graceful shutdown the lease is released for a fast handover.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tracing::{info, warn};

#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    pub duration: Duration,
}

/// Held leadership. `lost()` resolves if the lease is lost.
pub struct Leadership {
    lost: watch::Receiver<bool>,
    renewer: tokio::task::JoinHandle<()>,
    api: Api<Lease>,
    config: LeaseConfig,
}

fn secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX)
}

fn expired(lease: &Lease, now: Timestamp) -> bool {
    let Some(spec) = &lease.spec else { return true };
    if spec.holder_identity.as_deref().unwrap_or("").is_empty() {
        return true;
    }
    let Some(renew) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    renew.0.as_second().saturating_add(duration) < now.as_second()
}

async fn try_acquire(api: &Api<Lease>, c: &LeaseConfig) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    match api.get_opt(&c.name).await? {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(c.name.clone()),
                    namespace: Some(c.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(c.identity.clone()),
                    lease_duration_seconds: Some(secs(c.duration)),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            }
        }
        Some(mut lease) => {
            let mine = lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                == Some(c.identity.as_str());
            if !mine && !expired(&lease, now) {
                return Ok(false);
            }
            let spec = lease.spec.get_or_insert_with(Default::default);
            if !mine {
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                spec.acquire_time = Some(MicroTime(now));
            }
            spec.holder_identity = Some(c.identity.clone());
            spec.lease_duration_seconds = Some(secs(c.duration));
            spec.renew_time = Some(MicroTime(now));
            // replace() sends the resourceVersion we read: a concurrent writer makes this 409.
            match api.replace(&c.name, &PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            }
        }
    }
}

/// Waits until this process holds the lease.
pub async fn acquire(client: Client, config: LeaseConfig) -> Leadership {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let retry = (config.duration / 4).max(Duration::from_millis(200));
    loop {
        match try_acquire(&api, &config).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => warn!(error = %e, lease = %config.name, "cannot read or write the Lease"),
        }
        tokio::time::sleep(retry).await;
    }
    info!(lease = %config.name, identity = %config.identity, "became leader");
    let (tx, rx) = watch::channel(false);
    let renew_api = api.clone();
    let renew_config = config.clone();
    let renewer = tokio::spawn(async move {
        let every = (renew_config.duration / 3).max(Duration::from_millis(100));
        let mut last_ok = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(every).await;
            match try_acquire(&renew_api, &renew_config).await {
                Ok(true) => last_ok = tokio::time::Instant::now(),
                Ok(false) => {
                    warn!(lease = %renew_config.name, "another replica holds the Lease");
                    let _ = tx.send(true);
                    return;
                }
                Err(e) => {
                    warn!(error = %e, "cannot renew the Lease");
                    // Stop before the lease can expire under us: another replica may take it then.
                    if last_ok.elapsed() + every >= renew_config.duration {
                        let _ = tx.send(true);
                        return;
                    }
                }
            }
        }
    });
    Leadership {
        lost: rx,
        renewer,
        api,
        config,
    }
}

impl Leadership {
    /// A receiver that turns `true` when leadership is lost.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.lost.clone()
    }

    /// Resolves when leadership is lost.
    pub async fn lost(&self) {
        let mut rx = self.lost.clone();
        while !*rx.borrow() {
            if rx.changed().await.is_err() {
                // The renewer ended without reporting: treat as lost.
                return;
            }
        }
    }

    /// Stops renewing and gives the lease up so another replica takes over at once.
    pub async fn release(self) {
        self.renewer.abort();
        if let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await {
            let mine = lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                == Some(self.config.identity.as_str());
            if mine {
                if let Some(spec) = lease.spec.as_mut() {
                    spec.holder_identity = None;
                }
                if let Err(e) = self
                    .api
                    .replace(&self.config.name, &PostParams::default(), &lease)
                    .await
                {
                    warn!(error = %e, "cannot release the Lease");
                }
            }
        }
    }
}
