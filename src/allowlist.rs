//! Where the operator may send credentials: the hosts of KafkaRestProxy endpoints and Entra ID
//! authorities, and the scopes tokens may be asked for. Secure by default — the HDInsight
//! domains and the Entra authorities of the public and sovereign clouds — because a
//! KafkaRestProxy is written by a namespace user, and without a list the operator would send a
//! client secret or a bearer token wherever it is told, from its own network position.
//!
//! A proxy off the lists gets no connection at all, not even a DNS lookup: the check runs on
//! the spec's text before any client is built.

use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

/// `--allowed-endpoint-hosts` default: the HDInsight domains of the public, US Government and
/// China clouds.
pub const DEFAULT_ENDPOINT_HOSTS: &str =
    "*.azurehdinsight.net,*.azurehdinsight.us,*.azurehdinsight.cn";
/// `--allowed-authority-hosts` default: the Entra ID authorities of the public, US Government and
/// China clouds (both China host names are in use).
pub const DEFAULT_AUTHORITY_HOSTS: &str = "login.microsoftonline.com,login.microsoftonline.us,login.partner.microsoftonline.cn,login.chinacloudapi.cn";
/// `--allowed-scopes` default: the HDInsight scope of each cloud.
pub const DEFAULT_SCOPES: &str = "https://hib.azurehdinsight.net/.default,https://hib.azurehdinsight.us/.default,https://hib.azurehdinsight.cn/.default";

/// One entry of a host list: an exact DNS name, `*.` and a domain (exactly one more label in
/// front), or an IP literal (matched only exactly; a wildcard never matches an address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPattern {
    Name(String),
    Wildcard(String),
    Ip(IpAddr),
}

impl HostPattern {
    /// Parses one list entry; host names are compared without case and trailing dot.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim().trim_end_matches('.').to_ascii_lowercase();
        if t.is_empty() {
            return Err("an empty host".into());
        }
        let unbracketed = t.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(HostPattern::Ip(ip));
        }
        let (wild, domain) = match t.strip_prefix("*.") {
            Some(d) => (true, d.to_string()),
            None => (false, t.clone()),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !domain.split('.').all(label_ok) {
            return Err(format!(
                "{text:?} is not a host name, `*.` and a domain, or an IP address"
            ));
        }
        if wild && !domain.contains('.') {
            return Err(format!(
                "{text:?}: a wildcard needs a domain of at least two labels"
            ));
        }
        Ok(if wild {
            HostPattern::Wildcard(domain)
        } else {
            HostPattern::Name(domain)
        })
    }

    /// Whether `host` (from a parsed URL) is this entry.
    pub fn matches(&self, host: &Host<&str>) -> bool {
        match (self, host) {
            (HostPattern::Ip(ip), Host::Ipv4(a)) => *ip == IpAddr::V4(*a),
            (HostPattern::Ip(ip), Host::Ipv6(a)) => *ip == IpAddr::V6(*a),
            (HostPattern::Name(n), Host::Domain(d)) => normalise(d) == *n,
            (HostPattern::Wildcard(suffix), Host::Domain(d)) => {
                let d = normalise(d);
                d.strip_suffix(suffix.as_str())
                    .and_then(|front| front.strip_suffix('.'))
                    .is_some_and(|label| !label.is_empty() && !label.contains('.'))
            }
            _ => false,
        }
    }
}

fn normalise(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Name(n) => f.write_str(n),
            HostPattern::Wildcard(d) => write!(f, "*.{d}"),
            HostPattern::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// For clap: one entry of a host list flag.
pub fn parse_host_pattern(text: &str) -> Result<HostPattern, String> {
    HostPattern::parse(text)
}

/// For clap: one entry of `--allowed-scopes`.
pub fn parse_scope(text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.is_empty() || t.chars().any(char::is_whitespace) {
        return Err(format!("{text:?} is not a scope"));
    }
    Ok(t.to_string())
}

/// Why a KafkaRestProxy may not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotAllowed {
    /// The endpoint or the authority (reason `EndpointNotAllowed`).
    #[error("{0}")]
    Endpoint(String),
    /// The scope (reason `ScopeNotAllowed`).
    #[error("{0}")]
    Scope(String),
}

/// The three lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allowlist {
    pub endpoint_hosts: Vec<HostPattern>,
    pub authority_hosts: Vec<HostPattern>,
    pub scopes: Vec<String>,
}

impl Default for Allowlist {
    /// The secure defaults.
    fn default() -> Self {
        let hosts = |list: &str| {
            list.split(',')
                .filter_map(|h| HostPattern::parse(h).ok())
                .collect()
        };
        Allowlist {
            endpoint_hosts: hosts(DEFAULT_ENDPOINT_HOSTS),
            authority_hosts: hosts(DEFAULT_AUTHORITY_HOSTS),
            scopes: DEFAULT_SCOPES.split(',').map(str::to_string).collect(),
        }
    }
}

impl Allowlist {
    /// Checks a proxy's endpoint, authority and scope (each as written in the spec, defaults
    /// already applied). Userinfo in a URL is refused outright: it would be sent as a Basic
    /// credential and has no business in a cluster endpoint.
    pub fn check(&self, endpoint: &str, authority: &str, scope: &str) -> Result<(), NotAllowed> {
        check_url(
            "spec.endpoint",
            endpoint,
            &self.endpoint_hosts,
            "--allowed-endpoint-hosts",
        )?;
        check_url(
            "spec.authority",
            authority,
            &self.authority_hosts,
            "--allowed-authority-hosts",
        )?;
        if !self.scopes.iter().any(|s| s == scope) {
            return Err(NotAllowed::Scope(format!(
                "spec.scope {scope:?} is not in the operator's --allowed-scopes; no token is requested for it"
            )));
        }
        Ok(())
    }
}

fn check_url(
    field: &str,
    text: &str,
    allowed: &[HostPattern],
    flag: &str,
) -> Result<(), NotAllowed> {
    let url =
        Url::parse(text).map_err(|e| NotAllowed::Endpoint(format!("{field} is not a URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(NotAllowed::Endpoint(format!(
            "{field} carries user information (user@host); it is not allowed"
        )));
    }
    let Some(host) = url.host() else {
        return Err(NotAllowed::Endpoint(format!("{field} has no host")));
    };
    if allowed.iter().any(|p| p.matches(&host)) {
        return Ok(());
    }
    Err(NotAllowed::Endpoint(format!(
        "{field} host {host} is not in the operator's {flag}; nothing is sent to it"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(u: &str) -> Host<String> {
        Url::parse(u).expect("url").host().expect("host").to_owned()
    }

    fn matches(p: &str, u: &str) -> bool {
        let h = host(u);
        let h = match &h {
            Host::Domain(d) => Host::Domain(d.as_str()),
            Host::Ipv4(a) => Host::Ipv4(*a),
            Host::Ipv6(a) => Host::Ipv6(*a),
        };
        HostPattern::parse(p).expect("pattern").matches(&h)
    }

    #[test]
    fn wildcards_match_one_label_and_never_an_address() {
        assert!(matches(
            "*.azurehdinsight.net",
            "https://c-kafkarest.azurehdinsight.net"
        ));
        assert!(matches(
            "*.azurehdinsight.net",
            "https://C-KafkaRest.AzureHDInsight.NET./v1"
        ));
        assert!(!matches(
            "*.azurehdinsight.net",
            "https://azurehdinsight.net"
        ));
        assert!(!matches(
            "*.azurehdinsight.net",
            "https://a.b.azurehdinsight.net"
        ));
        assert!(!matches(
            "*.azurehdinsight.net",
            "https://evilazurehdinsight.net"
        ));
        assert!(!matches(
            "*.azurehdinsight.net",
            "https://c.azurehdinsight.net.evil.com"
        ));
        assert!(matches("127.0.0.1", "https://127.0.0.1:8443"));
        assert!(!matches("127.0.0.1", "https://127.0.0.2:8443"));
        assert!(matches("::1", "https://[::1]:8443"));
        assert!(matches("[::1]", "https://[::1]:8443"));
        // Another spelling of an address is the same address.
        assert!(matches("127.0.0.1", "https://2130706433/"));
        assert!(!matches(
            "login.microsoftonline.com",
            "https://login.microsoftonline.com.evil.io"
        ));
        assert!(HostPattern::parse("*.com").is_err());
        assert!(HostPattern::parse("a*.b.com").is_err());
        assert!(HostPattern::parse("").is_err());
        assert!(!matches("*.0.0.1", "https://127.0.0.1"));
    }

    #[test]
    fn defaults_allow_the_clouds_and_refuse_loopback() {
        let a = Allowlist::default();
        for (endpoint, authority, scope) in [
            (
                "https://c-kafkarest.azurehdinsight.net",
                "https://login.microsoftonline.com",
                "https://hib.azurehdinsight.net/.default",
            ),
            (
                "https://c-kafkarest.azurehdinsight.us",
                "https://login.microsoftonline.us",
                "https://hib.azurehdinsight.us/.default",
            ),
            (
                "https://c-kafkarest.azurehdinsight.cn",
                "https://login.partner.microsoftonline.cn",
                "https://hib.azurehdinsight.cn/.default",
            ),
        ] {
            assert_eq!(a.check(endpoint, authority, scope), Ok(()), "{endpoint}");
        }
        let ok_auth = "https://login.microsoftonline.com";
        let ok_scope = "https://hib.azurehdinsight.net/.default";
        assert!(matches!(
            a.check("https://127.0.0.1:8443", ok_auth, ok_scope),
            Err(NotAllowed::Endpoint(m)) if m.contains("--allowed-endpoint-hosts")
        ));
        assert!(matches!(
            a.check("https://c.azurehdinsight.net", "https://127.0.0.1", ok_scope),
            Err(NotAllowed::Endpoint(m)) if m.contains("--allowed-authority-hosts")
        ));
        assert!(matches!(
            a.check(
                "https://c.azurehdinsight.net",
                ok_auth,
                "https://management.azure.com/.default"
            ),
            Err(NotAllowed::Scope(_))
        ));
        assert!(matches!(
            a.check("https://u:p@c.azurehdinsight.net", ok_auth, ok_scope),
            Err(NotAllowed::Endpoint(m)) if m.contains("user information")
        ));
        assert!(matches!(
            a.check(
                "https://c.azurehdinsight.net",
                "https://x@login.microsoftonline.com",
                ok_scope
            ),
            Err(NotAllowed::Endpoint(_))
        ));
    }
}
