//! `sandbox bench`: N KafkaTopics at once against the emulators, the operator as a separate
//! process, every figure beside its lower bound. Optionally spread over K emulated clusters
//! (`--proxies`), with the operator on a CPU of its own (`--pin`), followed by a restart of the
//! operator (`--restart`), and with one JSON object as the last line of output (`--json`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt;
use hdinsight_emulator::RunningEmulator;
use hdinsight_topic_operator::crd::{
    KafkaRestProxy, KafkaTopic, KafkaTopicSpec, READY, find_condition,
};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde::Serialize;

use crate::env::{
    CLIENT_SECRET, ClusterSettings, Env, NAMESPACE, PROXY_NAME, sandbox_allowlist_env,
};

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Number of KafkaTopics applied at once.
    #[arg(long, default_value_t = 1000)]
    pub topics: usize,
    /// Spread the topics over this many KafkaRestProxies, each pointing at an emulated cluster
    /// of its own with the limits below.
    #[arg(long, default_value_t = 1)]
    pub proxies: usize,
    /// Latency the emulated proxy adds to every call.
    #[arg(long, default_value_t = 20)]
    pub latency_ms: u64,
    /// Delay before a created topic is listed.
    #[arg(long, default_value_t = 2000)]
    pub visibility_ms: u64,
    /// Each proxy's requestsPerSecond limit (0 = unlimited).
    #[arg(long, default_value_t = 100)]
    pub rps: u32,
    /// Each proxy's burst.
    #[arg(long, default_value_t = 200)]
    pub burst: u32,
    /// Each proxy's maxConcurrentRequests.
    #[arg(long, default_value_t = 16)]
    pub concurrency: u32,
    /// Resync interval of the operator during the run.
    #[arg(long, default_value_t = 20)]
    pub resync_secs: u64,
    /// How long the operator reuses the proxy's topic list (`--list-freshness`).
    #[arg(long, default_value_t = 2000)]
    pub list_freshness_ms: u64,
    /// Resync periods observed in the steady state (0: skip the steady state).
    #[arg(long, default_value_t = 2)]
    pub steady_periods: u32,
    /// Once all are Ready (and after the steady state), kill the operator (SIGKILL), start it
    /// again and measure what the new process does in its first `--restart-window-secs`.
    #[arg(long)]
    pub restart: bool,
    /// Run two replicas with leader election; with `--restart`, kill the leader instead and
    /// measure the window after the standby takes the Lease over.
    #[arg(long)]
    pub failover: bool,
    /// Lease duration of the replicas with `--failover`.
    #[arg(long, default_value_t = 5)]
    pub lease_secs: u64,
    /// The window measured after a restart (or the takeover).
    #[arg(long, default_value_t = 60)]
    pub restart_window_secs: u64,
    /// Pin the operator to CPU 1 and this process (both emulators and the driver) to CPU 0,
    /// so that the operator's figures are its own. Needs two CPUs and `taskset`.
    #[arg(long)]
    pub pin: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
    /// Print the results as one JSON object on the last line of output; with a FILE, also
    /// write them there.
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    pub json: Option<Option<PathBuf>>,
    /// Working directory (kubeconfig, CA).
    #[arg(long, default_value = ".sandbox/bench")]
    pub dir: PathBuf,
}

/// What the operator did in the first window after it was killed and started again.
#[derive(Serialize, Debug, Default, Clone, PartialEq)]
pub struct RestartResults {
    /// `restart` (killed and started again) or `failover` (leader killed, standby took over).
    pub kind: String,
    /// From the kill until the standby held the Lease (failover only).
    pub takeover_s: f64,
    pub window_s: f64,
    pub describes_first_minute: u64,
    pub lists: u64,
    pub creates: u64,
    pub status_writes: u64,
    /// Topics whose `Ready` condition changed (status or lastTransitionTime) across the restart.
    pub ready_flips: u64,
    /// `1.5 · N · window / resync`: describes a restart may cost (each Ready topic described
    /// once at a random point of its resync interval, with room for jitter).
    pub describes_bound: f64,
}

/// Every figure of a run. Serialised as the JSON object `--json` prints.
#[derive(Serialize, Debug, Default)]
pub struct Results {
    pub topics: usize,
    pub proxies: usize,
    pub pinned: bool,
    pub latency_ms: u64,
    pub visibility_ms: u64,
    pub rps: u32,
    pub burst: u32,
    pub concurrency: u32,
    pub lower_bound_s: f64,
    pub target_s: f64,
    pub apply_s: f64,
    pub all_ready_s: f64,
    pub ready_p50_s: f64,
    pub ready_p95_s: f64,
    pub ready_p99_s: f64,
    pub creates: u64,
    pub describes: u64,
    pub lists: u64,
    pub proxy_calls_per_topic: f64,
    pub token_requests: u64,
    pub status_writes: u64,
    pub status_writes_per_topic: f64,
    pub operator_peak_rss_mib: f64,
    pub operator_cpu_s: f64,
    pub operator_cpu_ms_per_topic: f64,
    /// CPU of this process: the emulators and the bench driver, up to all Ready.
    pub emulators_cpu_s: f64,
    pub emulators_cpu_ms_per_topic: f64,
    pub resync_secs: u64,
    pub list_freshness_ms: u64,
    pub steady_secs: f64,
    /// Topic lists sent to the proxies during the steady state.
    pub steady_lists: u64,
    pub steady_proxy_calls_per_minute: f64,
    pub steady_describes_per_topic_per_resync: f64,
    pub steady_status_writes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartResults>,
}

/// The largest share of topics one proxy gets.
fn topics_per_proxy(args: &BenchArgs) -> usize {
    args.topics.div_ceil(args.proxies.max(1))
}

/// The time the proxy calls alone need under the limits (design §6). The proxies work in
/// parallel, each under its own limits: the bound is the busiest proxy's.
pub fn lower_bound(args: &BenchArgs) -> Duration {
    let n = topics_per_proxy(args) as f64;
    let visibility = args.visibility_ms as f64 / 1000.0;
    let rate = if args.rps == 0 {
        0.0
    } else {
        ((2.0 * n - f64::from(args.burst)).max(0.0)) / f64::from(args.rps)
    };
    let latency = 2.0 * n * (args.latency_ms as f64 / 1000.0) / f64::from(args.concurrency.max(1));
    Duration::from_secs_f64(visibility.max(rate).max(latency))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// (peak resident MiB, CPU seconds) of a process, from /proc. An unreadable entry is an
/// error: a figure of 0 would pass every bound.
fn proc_usage(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let hwm_kib = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .with_context(|| format!("no VmHWM in /proc/{pid}/status"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command name (which is in parentheses): utime is 14th, stime 15th.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("no CPU times in /proc/{pid}/stat"))
    };
    // clock ticks per second is 100 on Linux.
    let cpu = (ticks(11)? + ticks(12)?) / 100.0;
    Ok((hwm_kib / 1024.0, cpu))
}

fn ready_transition_secs(t: &KafkaTopic) -> Option<f64> {
    let created = t.metadata.creation_timestamp.as_ref()?;
    let ready = find_condition(&t.status.as_ref()?.conditions, READY)?;
    if ready.status != "True" {
        return None;
    }
    let ms = ready.last_transition_time.0.as_millisecond() - created.0.as_millisecond();
    Some(ms as f64 / 1000.0)
}

/// Each topic's `Ready` status and lastTransitionTime, by name.
fn ready_states(items: &[KafkaTopic]) -> BTreeMap<String, (String, String)> {
    items
        .iter()
        .filter_map(|t| {
            let ready = find_condition(&t.status.as_ref()?.conditions, READY)?;
            Some((
                t.metadata.name.clone()?,
                (
                    ready.status.clone(),
                    ready.last_transition_time.0.to_string(),
                ),
            ))
        })
        .collect()
}

/// Topics whose `Ready` differs between two snapshots (changed, appeared or vanished).
fn ready_flips(
    before: &BTreeMap<String, (String, String)>,
    after: &BTreeMap<String, (String, String)>,
) -> u64 {
    let changed = before
        .iter()
        .filter(|(name, state)| after.get(*name) != Some(*state))
        .count();
    let appeared = after.keys().filter(|n| !before.contains_key(*n)).count();
    (changed + appeared) as u64
}

/// The proxy calls of every emulated cluster, summed.
#[derive(Debug, Default, Clone, Copy)]
struct Calls {
    creates: u64,
    describes: u64,
    lists: u64,
    other: u64,
    token_requests: u64,
}

impl Calls {
    fn of(clusters: &[&RunningEmulator]) -> Self {
        clusters.iter().fold(Self::default(), |acc, c| {
            let s = c.control().stats();
            Self {
                creates: acc.creates + s.count("create"),
                describes: acc.describes + s.count("describe"),
                lists: acc.lists + s.count("list"),
                other: acc.other + s.count("status") + s.count("brokers"),
                token_requests: acc.token_requests + s.token_requests,
            }
        })
    }

    fn all(&self) -> u64 {
        self.creates + self.describes + self.lists + self.other
    }

    fn since(&self, before: &Self) -> Self {
        Self {
            creates: self.creates.saturating_sub(before.creates),
            describes: self.describes.saturating_sub(before.describes),
            lists: self.lists.saturating_sub(before.lists),
            other: self.other.saturating_sub(before.other),
            token_requests: self.token_requests.saturating_sub(before.token_requests),
        }
    }
}

/// The name of the KafkaRestProxy of cluster `k`.
fn proxy_name(k: usize) -> String {
    if k == 0 {
        PROXY_NAME.to_string()
    } else {
        format!("cluster-{k}")
    }
}

/// Pins this process (every thread: the emulators and the driver) to CPU 0.
fn pin_self() -> anyhow::Result<()> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        bail!("--pin needs two CPUs; this machine offers {cpus}");
    }
    let status = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", "0"])
        .arg(std::process::id().to_string())
        .stdout(Stdio::null())
        .status()
        .context("running taskset (util-linux) for --pin")?;
    if !status.success() {
        bail!("taskset could not pin the bench to CPU 0: {status}");
    }
    Ok(())
}

/// The Lease the replicas of `--failover` compete for.
const LEASE: &str = "bench-operator";

/// Starts the operator; with a `replica` name, as one of two replicas under leader election.
fn spawn_operator(
    args: &BenchArgs,
    kubeconfig: &Path,
    replica: Option<&str>,
) -> anyhow::Result<tokio::process::Child> {
    let exe = std::env::current_exe()?;
    let mut command = if args.pin {
        let mut c = tokio::process::Command::new("taskset");
        c.args(["-c", "1"]).arg(exe);
        c
    } else {
        tokio::process::Command::new(exe)
    };
    command
        .arg("operator")
        .env("KUBECONFIG", kubeconfig)
        .env("HDI_METRICS_ADDR", "127.0.0.1:0")
        .env("HDI_HEALTH_ADDR", "127.0.0.1:0")
        .env("HDI_RESYNC_INTERVAL", format!("{}s", args.resync_secs))
        .env(
            "HDI_LIST_FRESHNESS",
            format!("{}ms", args.list_freshness_ms),
        )
        .env("HDI_MAX_CONCURRENT_RECONCILES", "256")
        .envs(sandbox_allowlist_env())
        .env("RUST_LOG", "warn");
    if let Some(name) = replica {
        command
            .env("HDI_LEADER_ELECTION", "true")
            .env("HDI_LEASE_NAME", LEASE)
            .env("HDI_LEASE_NAMESPACE", NAMESPACE)
            .env("HDI_LEASE_DURATION", format!("{}s", args.lease_secs))
            .env("POD_NAME", name);
    }
    command
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting the operator")
}

/// The replica (`a` or `b`) holding the Lease, once one of `candidates` does.
async fn leader(env: &Env, candidates: &[&str], deadline: Instant) -> anyhow::Result<String> {
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), NAMESPACE);
    loop {
        let holder = leases
            .get_opt(LEASE)
            .await?
            .and_then(|l| l.spec?.holder_identity)
            .unwrap_or_default();
        // Identities are `{POD_NAME}-{suffix}`.
        for name in candidates {
            if holder.starts_with(&format!("{name}-")) {
                return Ok(name.to_string());
            }
        }
        if Instant::now() > deadline {
            bail!("no replica took the Lease {LEASE} (holder: {holder:?})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let results = measure(&args).await?;
    print!("{}", markdown(&results));
    if let Some(json) = &args.json {
        if let Some(path) = json {
            std::fs::write(path, serde_json::to_string_pretty(&results)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        // The last line of output, for scripts: `sandbox bench --json | tail -1 | jq`.
        println!("{}", serde_json::to_string(&results)?);
    }
    Ok(())
}

pub async fn measure(args: &BenchArgs) -> anyhow::Result<Results> {
    if args.proxies == 0 {
        bail!("--proxies must be at least 1");
    }
    if args.pin {
        pin_self()?;
    }
    let cluster = ClusterSettings {
        visibility_delay: Duration::from_millis(args.visibility_ms),
        latency: Duration::from_millis(args.latency_ms),
        ..Default::default()
    };
    let env = Env::start(&args.dir, &cluster).await?;
    env.install(CLIENT_SECRET).await?;
    let mut extra = Vec::new();
    for k in 1..args.proxies {
        extra.push(env.add_cluster(&proxy_name(k)).await?);
    }
    let clusters: Vec<&RunningEmulator> = std::iter::once(&env.hdi).chain(extra.iter()).collect();
    let proxies: Api<KafkaRestProxy> = Api::namespaced(env.client.clone(), NAMESPACE);
    let limits = serde_json::json!({"spec": {"limits": {
        "requestsPerSecond": args.rps, "burst": args.burst,
        "maxConcurrentRequests": args.concurrency, "requestTimeoutSeconds": 30}}});
    for k in 0..args.proxies {
        proxies
            .patch(
                &proxy_name(k),
                &PatchParams::default(),
                &Patch::Merge(&limits),
            )
            .await?;
    }

    // With --failover: replicas `a` and `b`; `child` is the leader, `standby` the other (and
    // its name).
    let (mut child, mut standby) = if args.failover {
        let mut a = spawn_operator(args, &env.kubeconfig, Some("a"))?;
        let mut b = spawn_operator(args, &env.kubeconfig, Some("b"))?;
        let deadline = Instant::now() + Duration::from_secs(args.lease_secs * 4 + 10);
        match leader(&env, &["a", "b"], deadline).await {
            Ok(name) if name == "a" => (a, Some((b, "b"))),
            Ok(_) => (b, Some((a, "a"))),
            Err(e) => {
                let _ = a.kill().await;
                let _ = b.kill().await;
                return Err(e);
            }
        }
    } else {
        (spawn_operator(args, &env.kubeconfig, None)?, None)
    };
    let pid = child.id().unwrap_or(0);
    // The burst starts once the operator has synced its caches and checked every proxy (their
    // Ready condition), not after a guessed delay.
    let deadline = Instant::now() + Duration::from_secs(60);
    for k in 0..args.proxies {
        loop {
            let proxy = proxies.get(&proxy_name(k)).await?;
            let conditions = proxy.status.map(|s| s.conditions).unwrap_or_default();
            if find_condition(&conditions, READY).is_some_and(|c| c.status == "True") {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill().await;
                if let Some((s, _)) = standby.as_mut() {
                    let _ = s.kill().await;
                }
                bail!(
                    "the KafkaRestProxy {} is not Ready after 60 s: {conditions:?}",
                    proxy_name(k)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let topics: Api<KafkaTopic> = Api::namespaced(env.client.clone(), NAMESPACE);
    let started = Instant::now();
    let proxy_count = args.proxies;
    futures::stream::iter(0..args.topics)
        .map(|i| {
            let topics = topics.clone();
            async move {
                let spec: KafkaTopicSpec = serde_json::from_value(serde_json::json!({
                    "partitions": 3, "replicationFactor": 3,
                    "proxyRef": {"name": proxy_name(i % proxy_count)},
                    "config": {"retention.ms": 86_400_000}
                }))?;
                let t = KafkaTopic::new(&format!("bench-{i:05}"), spec);
                topics.create(&PostParams::default(), &t).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;

    let applied = started.elapsed();
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let items = loop {
        let items = topics.list(&ListParams::default()).await?.items;
        let ready = items
            .iter()
            .filter(|t| ready_transition_secs(t).is_some())
            .count();
        if ready == args.topics {
            break items;
        }
        if Instant::now() > deadline {
            let _ = child.kill().await;
            if let Some((s, _)) = standby.as_mut() {
                let _ = s.kill().await;
            }
            bail!(
                "only {ready} of {} topics Ready after {}s",
                args.topics,
                args.timeout_secs
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let all_ready = started.elapsed();
    let mut ttr: Vec<f64> = items.iter().filter_map(ready_transition_secs).collect();
    ttr.sort_by(f64::total_cmp);

    let calls = Calls::of(&clusters);
    let kube = env.kube.control().stats();
    let (rss, cpu) = proc_usage(pid)?;
    let (_, emulators_cpu) = proc_usage(std::process::id())?;
    let n = args.topics as f64;
    let lb = lower_bound(args);
    let mut r = Results {
        topics: args.topics,
        proxies: args.proxies,
        pinned: args.pin,
        latency_ms: args.latency_ms,
        visibility_ms: args.visibility_ms,
        rps: args.rps,
        burst: args.burst,
        concurrency: args.concurrency,
        lower_bound_s: lb.as_secs_f64(),
        apply_s: applied.as_secs_f64(),
        all_ready_s: all_ready.as_secs_f64(),
        target_s: 1.25 * lb.as_secs_f64() + 2.0,
        ready_p50_s: percentile(&ttr, 50.0),
        ready_p95_s: percentile(&ttr, 95.0),
        ready_p99_s: percentile(&ttr, 99.0),
        creates: calls.creates,
        describes: calls.describes,
        lists: calls.lists,
        token_requests: calls.token_requests,
        status_writes: kube.writes_to("kafkatopics", Some("status")),
        operator_peak_rss_mib: rss,
        operator_cpu_s: cpu,
        emulators_cpu_s: emulators_cpu,
        resync_secs: args.resync_secs,
        list_freshness_ms: args.list_freshness_ms,
        ..Default::default()
    };
    r.proxy_calls_per_topic = (r.creates + r.describes + r.lists) as f64 / n;
    r.status_writes_per_topic = r.status_writes as f64 / n;
    r.operator_cpu_ms_per_topic = cpu * 1000.0 / n;
    r.emulators_cpu_ms_per_topic = emulators_cpu * 1000.0 / n;

    // Steady state: nothing changes, so nothing may be written.
    if args.steady_periods > 0 {
        let before = Calls::of(&clusters);
        let before_writes = status_writes(&env);
        let steady = Duration::from_secs(args.resync_secs * u64::from(args.steady_periods));
        tokio::time::sleep(steady).await;
        let during = Calls::of(&clusters).since(&before);
        r.steady_secs = steady.as_secs_f64();
        r.steady_lists = during.lists;
        r.steady_proxy_calls_per_minute = during.all() as f64 * 60.0 / steady.as_secs_f64();
        r.steady_describes_per_topic_per_resync =
            during.describes as f64 / n / f64::from(args.steady_periods);
        r.steady_status_writes = status_writes(&env).saturating_sub(before_writes);
    }
    let (rss, cpu) = proc_usage(pid)?;
    r.operator_peak_rss_mib = r.operator_peak_rss_mib.max(rss);
    r.operator_cpu_s = cpu;

    if args.restart {
        let before_states = ready_states(&topics.list(&ListParams::default()).await?.items);
        let before = Calls::of(&clusters);
        let before_writes = status_writes(&env);
        let killed = Instant::now();
        child.kill().await.context("killing the operator")?;
        let takeover = match standby.take() {
            Some((next, name)) => {
                // The standby takes over once the dead leader's Lease has expired.
                child = next;
                let deadline = Instant::now() + Duration::from_secs(args.lease_secs * 4 + 10);
                leader(&env, &[name], deadline).await?;
                killed.elapsed()
            }
            None => {
                child = spawn_operator(args, &env.kubeconfig, None)?;
                Duration::ZERO
            }
        };
        let window = Duration::from_secs(args.restart_window_secs);
        tokio::time::sleep(window).await;
        let during = Calls::of(&clusters).since(&before);
        let after_states = ready_states(&topics.list(&ListParams::default()).await?.items);
        r.restart = Some(RestartResults {
            kind: if args.failover { "failover" } else { "restart" }.into(),
            takeover_s: takeover.as_secs_f64(),
            window_s: window.as_secs_f64(),
            describes_first_minute: during.describes,
            lists: during.lists,
            creates: during.creates,
            status_writes: status_writes(&env).saturating_sub(before_writes),
            ready_flips: ready_flips(&before_states, &after_states),
            describes_bound: 1.5 * n * window.as_secs_f64() / args.resync_secs.max(1) as f64,
        });
    }
    let _ = child.kill().await;
    if let Some((s, _)) = standby.as_mut() {
        let _ = s.kill().await;
    }
    Ok(r)
}

/// Most topic lists the steady state may send: the list is shared and reused for the list
/// freshness, so one per freshness period per proxy (and one more for a period cut by the
/// window).
pub fn steady_list_bound(r: &Results) -> u64 {
    let window_ms = (r.steady_secs * 1000.0) as u64;
    (window_ms / r.list_freshness_ms.max(1) + 1) * r.proxies.max(1) as u64
}

fn status_writes(env: &Env) -> u64 {
    env.kube
        .control()
        .stats()
        .writes_to("kafkatopics", Some("status"))
}

/// The results beside their bounds, as a Markdown table.
pub fn markdown(r: &Results) -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut s = format!(
        "N = {} topics over {} proxies, proxy latency {} ms, visibility {} ms, limits per proxy {} rps / burst {} / {} concurrent{}\n\n",
        r.topics,
        r.proxies,
        r.latency_ms,
        r.visibility_ms,
        r.rps,
        r.burst,
        r.concurrency,
        if r.pinned {
            "; operator pinned to CPU 1, emulators and driver to CPU 0"
        } else {
            ""
        }
    );
    s.push_str("| figure | measured | bound / target |\n|---|---|---|\n");
    let mut row = |a: &str, b: String, c: String| s.push_str(&format!("| {a} | {b} | {c} |\n"));
    row(
        "applying the N KafkaTopics (the bench's own Kubernetes writes)",
        format!("{:.1} s", r.apply_s),
        "–".into(),
    );
    row(
        "all Ready (from the first apply)",
        format!("{:.1} s", r.all_ready_s),
        format!("LB {:.1} s, target ≤ {:.1} s", r.lower_bound_s, r.target_s),
    );
    row(
        "time to Ready p50 / p95 / p99",
        format!(
            "{:.0} / {:.0} / {:.0} s",
            r.ready_p50_s, r.ready_p95_s, r.ready_p99_s
        ),
        format!(
            "≥ {:.1} s (visibility); 1 s resolution",
            r.visibility_ms as f64 / 1000.0
        ),
    );
    row(
        "proxy calls per topic (create + describe + list)",
        format!(
            "{:.2} ({} + {} + {})",
            r.proxy_calls_per_topic, r.creates, r.describes, r.lists
        ),
        "≥ 2 (one create, one describe); target ≤ 2.05".into(),
    );
    row(
        "token requests",
        r.token_requests.to_string(),
        format!("1 per proxy per token lifetime = {}", r.proxies),
    );
    row(
        "status writes per topic",
        format!("{:.2} ({})", r.status_writes_per_topic, r.status_writes),
        "≥ 1; target ≤ 3".into(),
    );
    row(
        "operator peak RSS",
        format!("{:.0} MiB", r.operator_peak_rss_mib),
        "target < 96 MiB at 10,000, < 400 MiB at 50,000".into(),
    );
    row(
        "operator CPU (whole run)",
        format!(
            "{:.1} s ({:.2} ms per topic until all Ready)",
            r.operator_cpu_s, r.operator_cpu_ms_per_topic
        ),
        "target ≤ 0.5 ms per topic".into(),
    );
    row(
        "emulators + bench driver CPU until all Ready",
        format!(
            "{:.1} s ({:.2} ms per topic)",
            r.emulators_cpu_s, r.emulators_cpu_ms_per_topic
        ),
        if r.pinned {
            format!("one CPU × {:.1} s", r.all_ready_s)
        } else {
            format!(
                "shared with the operator: {cores} cores × {:.1} s = {:.1} CPU-seconds",
                r.all_ready_s,
                cores as f64 * r.all_ready_s
            )
        },
    );
    if r.steady_secs > 0.0 {
        row(
            "steady state: topic lists",
            r.steady_lists.to_string(),
            format!(
                "≤ ({:.0} s / {} ms freshness + 1) · {} proxies = {}",
                r.steady_secs,
                r.list_freshness_ms,
                r.proxies,
                steady_list_bound(r)
            ),
        );
        row(
            "steady state: proxy calls per minute",
            format!("{:.0}", r.steady_proxy_calls_per_minute),
            format!(
                "N · 60 / resync = {:.0} describes (+ a few lists and proxy checks)",
                r.topics as f64 * 60.0 / r.resync_secs.max(1) as f64
            ),
        );
        row(
            "steady state: describes per topic per resync",
            format!("{:.2}", r.steady_describes_per_topic_per_resync),
            "1".into(),
        );
        row(
            "steady state: status writes",
            r.steady_status_writes.to_string(),
            "0".into(),
        );
    }
    if let Some(x) = &r.restart {
        if x.kind == "failover" {
            row(
                "failover: from the leader's death to the standby's takeover",
                format!("{:.1} s", x.takeover_s),
                "≤ the Lease duration (+ one retry period)".into(),
            );
        }
        row(
            &format!("{}: describes in the first {:.0} s", x.kind, x.window_s),
            x.describes_first_minute.to_string(),
            format!("≤ 1.5 · N · window / resync = {:.0}", x.describes_bound),
        );
        row(
            &format!("{}: lists / creates", x.kind),
            format!("{} / {}", x.lists, x.creates),
            format!("≥ {} (one per proxy) / 0", r.proxies),
        );
        row(
            &format!("{}: status writes", x.kind),
            x.status_writes.to_string(),
            "0".into(),
        );
        row(
            &format!("{}: Ready flips", x.kind),
            x.ready_flips.to_string(),
            "0".into(),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(n: usize) -> BenchArgs {
        BenchArgs {
            topics: n,
            latency_ms: 20,
            visibility_ms: 2000,
            rps: 100,
            burst: 200,
            concurrency: 16,
            resync_secs: 20,
            list_freshness_ms: 2000,
            steady_periods: 2,
            restart: false,
            failover: false,
            lease_secs: 5,
            restart_window_secs: 60,
            pin: false,
            proxies: 1,
            timeout_secs: 600,
            json: None,
            dir: PathBuf::from("x"),
        }
    }

    #[test]
    fn lower_bound_matches_the_design_examples() {
        // Default limits, N = 1,000, 20 ms, 2 s: LB = (2000 - 200) / 100 = 18 s.
        assert_eq!(lower_bound(&args(1000)).as_secs_f64(), 18.0);
        // Unthrottled, 64 concurrent, N = 10,000: 2 * 10,000 * 0.02 / 64 = 6.25 s.
        let mut a = args(10_000);
        a.rps = 0;
        a.concurrency = 64;
        assert_eq!(lower_bound(&a).as_secs_f64(), 6.25);
    }

    #[test]
    fn proxies_work_in_parallel_under_their_own_limits() {
        // 50,000 topics over 10 proxies at the default limits: each proxy has 5,000 topics,
        // (2 · 5,000 − 200) / 100 = 98 s, the same as one proxy with 5,000 topics.
        let mut a = args(50_000);
        a.proxies = 10;
        assert_eq!(lower_bound(&a).as_secs_f64(), 98.0);
        assert_eq!(lower_bound(&a), lower_bound(&args(5_000)));
        // An uneven split is bounded by the busiest proxy: 1,001 over 2 → 501.
        let mut b = args(1_001);
        b.proxies = 2;
        assert_eq!(lower_bound(&b), lower_bound(&args(501)));
    }

    #[test]
    fn ready_flips_count_every_changed_appeared_or_vanished_topic() {
        let state = |s: &str, t: &str| (s.to_string(), t.to_string());
        let before: BTreeMap<String, (String, String)> = [
            ("a".to_string(), state("True", "t1")),
            ("b".to_string(), state("True", "t1")),
            ("c".to_string(), state("True", "t1")),
            ("d".to_string(), state("True", "t1")),
        ]
        .into();
        let mut after = before.clone();
        assert_eq!(ready_flips(&before, &after), 0);
        // Flipped to False and back: only the transition time tells.
        after.insert("a".into(), state("True", "t2"));
        // Still False.
        after.insert("b".into(), state("False", "t2"));
        after.remove("c");
        after.insert("e".into(), state("True", "t2"));
        assert_eq!(ready_flips(&before, &after), 4);
    }

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 51.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
