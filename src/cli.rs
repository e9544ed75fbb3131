//! Command line: `run` (default), `crds`, `check`, `import`, `produce`, `consume`. Every flag of
//! `run` has an environment variable, so the Helm chart configures the operator through env.
//! Installed as `kubectl-hdinsight` (a copy or a link of the binary), the same commands answer
//! as `kubectl hdinsight …`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "hdinsight-topic-operator",
    version,
    about = "Manages Kafka topics on Azure HDInsight through the cluster's Kafka REST proxy"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the controllers (the default).
    Run(Box<RunArgs>),
    /// Print the CustomResourceDefinitions as YAML.
    Crds,
    /// Check a KafkaRestProxy's credentials and connectivity and say precisely what works.
    Check(Box<CheckArgs>),
    /// Print KafkaTopic manifests for the topics a cluster already has.
    Import(Box<ImportArgs>),
    /// Send one record to a topic through the REST proxy.
    Produce(Box<ProduceArgs>),
    /// Read records of a topic through the REST proxy, one per line: partition, offset, key,
    /// value (key and value as JSON strings; a missing key is null).
    Consume(Box<ConsumeArgs>),
}

#[derive(Args, Debug, Clone)]
pub struct LogArgs {
    /// Log format.
    #[arg(long, env = "HDI_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Log filter, e.g. `info` or `hdinsight_topic_operator=debug,kube=info`.
    #[arg(long, env = "HDI_LOG_LEVEL", default_value = "info", global = true)]
    pub log_level: String,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Namespaces to watch, comma separated; empty watches all namespaces.
    #[arg(
        long,
        env = "HDI_WATCH_NAMESPACES",
        value_delimiter = ',',
        default_value = ""
    )]
    pub watch_namespaces: Vec<String>,
    /// Namespaces where KafkaRestProxies are served and Secrets read, comma separated; empty
    /// means the watched namespaces. Keep proxies (and so credentials) in a platform namespace.
    #[arg(
        long,
        env = "HDI_PROXY_NAMESPACES",
        value_delimiter = ',',
        default_value = ""
    )]
    pub proxy_namespaces: Vec<String>,
    /// Reconcile only while holding a coordination.k8s.io Lease (for more than one replica).
    #[arg(long, env = "HDI_LEADER_ELECTION", default_value_t = false)]
    pub leader_election: bool,
    /// Name of the Lease.
    #[arg(
        long,
        env = "HDI_LEASE_NAME",
        default_value = "hdinsight-topic-operator"
    )]
    pub lease_name: String,
    /// Namespace of the Lease; defaults to POD_NAMESPACE, then `default`.
    #[arg(long, env = "HDI_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// How long a Lease holder stays leader without renewing.
    #[arg(long, env = "HDI_LEASE_DURATION", default_value = "15s", value_parser = parse_positive_duration)]
    pub lease_duration: Duration,
    /// Address of the metrics endpoint (/metrics).
    #[arg(long, env = "HDI_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Address of the health endpoints (/livez, /readyz).
    #[arg(long, env = "HDI_HEALTH_ADDR", default_value = "0.0.0.0:8081")]
    pub health_addr: SocketAddr,
    /// How often a Ready topic is described again (with ±10 % jitter).
    #[arg(long, env = "HDI_RESYNC_INTERVAL", default_value = "10m", value_parser = parse_positive_duration)]
    pub resync_interval: Duration,
    /// Reconciles running at once, per kind.
    #[arg(long, env = "HDI_MAX_CONCURRENT_RECONCILES", default_value_t = 64)]
    pub max_concurrent_reconciles: u16,
    /// How long a created topic may take to appear before it is reported NotVisible.
    #[arg(long, env = "HDI_VISIBILITY_TIMEOUT", default_value = "10m", value_parser = parse_duration)]
    pub visibility_timeout: Duration,
    /// How long a topic that existed must stay missing before it is created again.
    #[arg(long, env = "HDI_RECREATE_GRACE", default_value = "5m", value_parser = parse_duration)]
    pub recreate_grace: Duration,
    /// How old the shared topic list may be when a reconcile uses it.
    #[arg(long, env = "HDI_LIST_FRESHNESS", default_value = "2s", value_parser = parse_duration)]
    pub list_freshness: Duration,
    /// Hosts a KafkaRestProxy endpoint may name, comma separated: DNS names, `*.domain` (one
    /// label), or IP addresses (matched exactly). Credentials go nowhere else.
    #[arg(
        long,
        env = "HDI_ALLOWED_ENDPOINT_HOSTS",
        value_delimiter = ',',
        default_value = crate::allowlist::DEFAULT_ENDPOINT_HOSTS,
        value_parser = crate::allowlist::parse_host_pattern
    )]
    pub allowed_endpoint_hosts: Vec<crate::allowlist::HostPattern>,
    /// Entra ID authority hosts a KafkaRestProxy may name, in the same form.
    #[arg(
        long,
        env = "HDI_ALLOWED_AUTHORITY_HOSTS",
        value_delimiter = ',',
        default_value = crate::allowlist::DEFAULT_AUTHORITY_HOSTS,
        value_parser = crate::allowlist::parse_host_pattern
    )]
    pub allowed_authority_hosts: Vec<crate::allowlist::HostPattern>,
    /// Token scopes a KafkaRestProxy may ask for, comma separated, matched exactly.
    #[arg(
        long,
        env = "HDI_ALLOWED_SCOPES",
        value_delimiter = ',',
        default_value = crate::allowlist::DEFAULT_SCOPES,
        value_parser = crate::allowlist::parse_scope
    )]
    pub allowed_scopes: Vec<String>,
    /// How long after a create without a clear answer (5xx, timeout) the topic is looked up and
    /// created again if still absent.
    #[arg(long, env = "HDI_UNCERTAIN_RETRY", default_value = "30s", value_parser = parse_duration)]
    pub uncertain_retry: Duration,
}

/// Which cluster to talk to: a KafkaRestProxy in the current kubeconfig's cluster, or the
/// direct flags.
#[derive(Args, Debug, Clone)]
pub struct ConnectionArgs {
    /// A KafkaRestProxy to use (with -n); reads its Secret through the current kubeconfig.
    #[arg(long)]
    pub proxy: Option<String>,
    /// Namespace of the KafkaRestProxy.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    #[command(flatten)]
    pub direct: DirectArgs,
}

#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Also produce one record to this (existing) topic and read it back.
    #[arg(long)]
    pub topic: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// The topic to write to.
    #[arg(long)]
    pub topic: String,
    /// The record's key.
    #[arg(long)]
    pub key: Option<String>,
    /// The record's value.
    #[arg(long)]
    pub value: String,
    /// The partition to write to; by default Kafka's partitioner chooses (by key).
    #[arg(long)]
    pub partition: Option<i32>,
}

#[derive(Args, Debug, Clone)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// The topic to read.
    #[arg(long)]
    pub topic: String,
    /// Read only this partition; by default every partition.
    #[arg(long)]
    pub partition: Option<i32>,
    /// The first offset to read; by default each partition's earliest offset.
    #[arg(long)]
    pub offset: Option<i64>,
    /// At most this many records per partition.
    #[arg(long, default_value_t = 100)]
    pub count: u32,
}

#[derive(Args, Debug, Clone)]
pub struct DirectArgs {
    /// Proxy endpoint, e.g. https://mycluster-kafkarest.azurehdinsight.net.
    #[arg(long, env = "HDI_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Entra ID tenant id.
    #[arg(long, env = "HDI_TENANT_ID")]
    pub tenant: Option<String>,
    /// Application (client) id.
    #[arg(long, env = "HDI_CLIENT_ID")]
    pub client_id: Option<String>,
    /// File holding the client secret (never pass a secret on the command line).
    #[arg(long, env = "HDI_CLIENT_SECRET_FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// Instead of a secret: PEM file with the certificate registered on the app (with
    /// --client-key-file).
    #[arg(
        long,
        env = "HDI_CLIENT_CERTIFICATE_FILE",
        conflicts_with = "client_secret_file",
        requires = "client_key_file"
    )]
    pub client_certificate_file: Option<PathBuf>,
    /// PEM file with the certificate's RSA private key.
    #[arg(
        long,
        env = "HDI_CLIENT_KEY_FILE",
        requires = "client_certificate_file"
    )]
    pub client_key_file: Option<PathBuf>,
    /// Entra ID authority.
    #[arg(long, env = "HDI_AUTHORITY", default_value = crate::crd::DEFAULT_AUTHORITY)]
    pub authority: String,
    /// Token scope.
    #[arg(long, env = "HDI_SCOPE", default_value = crate::crd::DEFAULT_SCOPE)]
    pub scope: String,
    /// Extra CA certificates (PEM file) to trust.
    #[arg(long, env = "HDI_CA_FILE")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    #[command(flatten)]
    pub direct: DirectArgs,
    /// A KafkaRestProxy whose endpoint and Secret to use (with --proxy-namespace), instead of the
    /// direct flags.
    #[arg(long)]
    pub proxy: Option<String>,
    /// Namespace of --proxy.
    #[arg(long, default_value = "default")]
    pub proxy_namespace: String,
    /// Namespace to put in the generated KafkaTopics.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// spec.proxyRef of the generated KafkaTopics, as NAME or NAMESPACE/NAME.
    #[arg(long)]
    pub proxy_ref: Option<String>,
    /// managementPolicy of the generated KafkaTopics.
    #[arg(long, value_enum, default_value_t = ImportPolicy::Observe)]
    pub policy: ImportPolicy,
    /// Include internal topics (names starting with `__`).
    #[arg(long)]
    pub include_internal: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportPolicy {
    Observe,
    Create,
}

/// Parses `500ms`, `30s`, `10m`, `2h` or a plain number of seconds, up to
/// [`crate::clock::MAX_DELAY`] (30 days): a longer one is refused rather than scheduled, since
/// no clock or timer can hold an arbitrary deadline.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s, 10m or 500ms"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{s:?} is not a valid duration"));
    }
    let max = crate::clock::MAX_DELAY;
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if d <= max => Ok(d),
        _ => Err(format!(
            "{s:?} is out of range: at most {}h",
            max.as_secs() / 3600
        )),
    }
}

/// [`parse_duration`], and more than zero.
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("{:?} must be more than zero", s.trim()));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("15"), Ok(Duration::from_secs(15)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("720h").is_ok());
        assert!(parse_duration("721h").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
        assert!(parse_duration("1e400").is_err());
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_positive_duration("0s").is_err());
        assert!(parse_positive_duration("0.0001ms").is_ok());
    }

    #[test]
    fn run_is_the_default_and_flags_have_env_vars() {
        Cli::command_for_test();
        let cli =
            Cli::try_parse_from(["hdinsight-topic-operator"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(cli.command.is_none());
        let cli = Cli::try_parse_from([
            "x",
            "run",
            "--watch-namespaces",
            "a,b",
            "--resync-interval",
            "30s",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        match cli.command {
            Some(Command::Run(r)) => {
                assert_eq!(r.watch_namespaces, vec!["a".to_string(), "b".to_string()]);
                assert_eq!(r.resync_interval, Duration::from_secs(30));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn allowlists_default_to_the_clouds_and_bad_entries_name_the_flag() {
        let cli = Cli::try_parse_from(["x", "run"]).unwrap_or_else(|e| panic!("{e}"));
        let Some(Command::Run(r)) = cli.command else {
            panic!("run")
        };
        let d = crate::allowlist::Allowlist::default();
        assert_eq!(r.allowed_endpoint_hosts, d.endpoint_hosts);
        assert_eq!(r.allowed_authority_hosts, d.authority_hosts);
        assert_eq!(r.allowed_scopes, d.scopes);
        let err = Cli::try_parse_from(["x", "run", "--allowed-endpoint-hosts", "a*.b.com"])
            .expect_err("bad pattern");
        assert!(
            err.to_string().contains("--allowed-endpoint-hosts"),
            "{err}"
        );
    }

    #[test]
    fn out_of_range_durations_are_refused_naming_the_flag() {
        for (flag, value) in [
            ("--resync-interval", "99999999999999999999h"),
            ("--resync-interval", "0s"),
            ("--lease-duration", "0"),
            ("--visibility-timeout", "1000000h"),
        ] {
            let err = Cli::try_parse_from(["x", "run", flag, value]).expect_err("out of range");
            assert!(err.to_string().contains(flag), "{flag}: {err}");
        }
    }

    impl Cli {
        fn command_for_test() {
            use clap::CommandFactory;
            Cli::command().debug_assert();
        }
    }
}

/// `run` with its defaults and environment, for when no subcommand is given.
#[derive(Parser, Debug)]
struct RunOnly {
    #[command(flatten)]
    args: RunArgs,
}

impl RunArgs {
    /// The run arguments from the environment and defaults alone.
    pub fn from_env() -> Result<Self, clap::Error> {
        RunOnly::try_parse_from(["hdinsight-topic-operator"]).map(|r| r.args)
    }
}
