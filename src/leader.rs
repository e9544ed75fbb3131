//! Leader election on a `coordination.k8s.io/v1` Lease. Only the holder reconciles and writes.
//!
//! Fencing, as client-go's leaderelection does it:
//! - **expiry is judged by locally observed time**: a candidate remembers when it last saw the
//!   Lease record change (holder, renewTime, transitions) on its own monotonic clock, and takes
//!   the Lease only when that record has stood unchanged for a whole lease duration. Clocks of
//!   different machines are never compared.
//! - **the holder renews with a deadline shorter than the lease**: every renewal attempt is
//!   bounded by `renew_deadline` (two thirds of the lease) counted from the start of the last
//!   successful renewal; when it passes, or another holder is found, leadership is reported lost
//!   at once and the caller aborts every reconcile (the process exits). The old holder has
//!   stopped `lease − renew_deadline` before any candidate can take the Lease.
//!
//! On graceful shutdown the lease is released for a fast handover.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    pub duration: Duration,
}

impl LeaseConfig {
    /// How long the holder may go without a successful renewal before it gives up: two thirds of
    /// the lease (client-go's defaults are 10 s of 15 s).
    pub fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }

    /// Pause between attempts (client-go: 2 s of 15 s).
    pub fn retry_period(&self) -> Duration {
        (self.duration / 6).max(Duration::from_millis(100))
    }
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

/// What identifies one version of the Lease record, for the observed-time rule.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    holder: String,
    renew: Option<i64>,
    acquire: Option<i64>,
    transitions: Option<i32>,
    duration: Option<i32>,
}

fn record_of(lease: &Lease) -> Record {
    let spec = lease.spec.clone().unwrap_or_default();
    Record {
        holder: spec.holder_identity.unwrap_or_default(),
        renew: spec.renew_time.map(|t| t.0.as_microsecond()),
        acquire: spec.acquire_time.map(|t| t.0.as_microsecond()),
        transitions: spec.lease_transitions,
        duration: spec.lease_duration_seconds,
    }
}

/// The last Lease record this candidate saw, and when (its own clock).
#[derive(Debug, Default)]
pub struct Observed {
    last: Option<(Record, Instant)>,
}

impl Observed {
    /// Notes `record` as seen at `now`; returns when it was first seen unchanged.
    fn see(&mut self, record: Record, now: Instant) -> Instant {
        match &self.last {
            Some((r, at)) if *r == record => *at,
            _ => {
                self.last = Some((record, now));
                now
            }
        }
    }
}

/// Whether a candidate may take a Lease held by someone else: no holder, or the record has
/// stood unchanged (by this candidate's clock) for the lease duration it states.
fn expired(record: &Record, first_seen: Instant, now: Instant) -> bool {
    if record.holder.is_empty() {
        return true;
    }
    let duration = Duration::from_secs(u64::try_from(record.duration.unwrap_or(15)).unwrap_or(15));
    now.saturating_duration_since(first_seen) > duration
}

async fn try_acquire(
    api: &Api<Lease>,
    c: &LeaseConfig,
    observed: &mut Observed,
) -> Result<bool, kube::Error> {
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
            let record = record_of(&lease);
            let first_seen = observed.see(record.clone(), Instant::now());
            let mine = record.holder == c.identity;
            if !mine && !expired(&record, first_seen, Instant::now()) {
                return Ok(false);
            }
            let spec = lease.spec.get_or_insert_with(Default::default);
            if !mine {
                spec.lease_transitions =
                    Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
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
    let retry = config.retry_period();
    let mut observed = Observed::default();
    let mut acquired_at;
    loop {
        let started = Instant::now();
        // An attempt that hangs must not hold leadership it cannot renew: bounded like renewals.
        match tokio::time::timeout(
            config.renew_deadline(),
            try_acquire(&api, &config, &mut observed),
        )
        .await
        {
            Ok(Ok(true)) => {
                acquired_at = started;
                break;
            }
            Ok(Ok(false)) => {}
            Ok(Err(e)) => warn!(error = %e, lease = %config.name, "cannot read or write the Lease"),
            Err(_) => warn!(lease = %config.name, "reading or writing the Lease timed out"),
        }
        tokio::time::sleep(retry).await;
    }
    info!(lease = %config.name, identity = %config.identity, "became leader");
    let (tx, rx) = watch::channel(false);
    let renew_api = api.clone();
    let renew_config = config.clone();
    let renewer = tokio::spawn(async move {
        let deadline_after = renew_config.renew_deadline();
        loop {
            tokio::time::sleep(renew_config.retry_period()).await;
            // Counted from the start of the last successful renewal: the Lease says it was
            // renewed no earlier than that.
            let deadline = acquired_at + deadline_after;
            let started = Instant::now();
            let Some(left) = deadline
                .checked_duration_since(started)
                .filter(|d| !d.is_zero())
            else {
                warn!(lease = %renew_config.name, "the Lease was not renewed within its deadline; leadership lost");
                let _ = tx.send(true);
                return;
            };
            match tokio::time::timeout(left, try_acquire(&renew_api, &renew_config, &mut observed))
                .await
            {
                Ok(Ok(true)) => acquired_at = started,
                Ok(Ok(false)) => {
                    warn!(lease = %renew_config.name, "another replica holds the Lease; leadership lost");
                    let _ = tx.send(true);
                    return;
                }
                Ok(Err(e)) => {
                    warn!(error = %e, "cannot renew the Lease; retrying until the deadline")
                }
                Err(_) => {
                    warn!(lease = %renew_config.name, "renewing the Lease did not finish within its deadline; leadership lost");
                    let _ = tx.send(true);
                    return;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(holder: &str, renew: i64) -> Record {
        Record {
            holder: holder.into(),
            renew: Some(renew),
            acquire: Some(0),
            transitions: Some(0),
            duration: Some(3),
        }
    }

    #[test]
    fn expiry_is_judged_by_when_the_record_was_seen_not_by_its_timestamps() {
        let t0 = Instant::now();
        let mut seen = Observed::default();
        // A renewTime far in the past (another machine's clock is behind) means nothing: the
        // record was first seen now, so it is valid for its full duration from now.
        let first = seen.see(record("a", -1_000_000_000), t0);
        assert!(!expired(
            &record("a", -1_000_000_000),
            first,
            t0 + Duration::from_secs(2)
        ));
        assert!(expired(
            &record("a", -1_000_000_000),
            first,
            t0 + Duration::from_millis(3100)
        ));
        // A renewal (a changed record) restarts the clock, even with a renewTime in the future.
        let later = seen.see(record("a", i64::MAX), t0 + Duration::from_secs(2));
        assert_eq!(later, t0 + Duration::from_secs(2));
        assert!(!expired(
            &record("a", i64::MAX),
            later,
            t0 + Duration::from_secs(4)
        ));
        // The same record seen again keeps its first sighting.
        assert_eq!(
            seen.see(record("a", i64::MAX), t0 + Duration::from_secs(9)),
            later
        );
        // No holder: free at once.
        assert!(expired(&record("", 0), t0, t0));
    }

    #[test]
    fn the_renew_deadline_is_shorter_than_the_lease() {
        for secs in [1, 3, 15, 60] {
            let c = LeaseConfig {
                name: "l".into(),
                namespace: "n".into(),
                identity: "i".into(),
                duration: Duration::from_secs(secs),
            };
            assert!(c.renew_deadline() < c.duration);
            assert!(c.retry_period() < c.renew_deadline());
        }
    }
}
