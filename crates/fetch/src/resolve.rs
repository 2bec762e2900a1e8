//! DNS resolution for outbound fetches, with blocked addresses dropped before reqwest connects: the
//! connection goes only to addresses that were checked, so DNS rebinding has no gap to use.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::address::is_blocked;

/// Turns a host name into addresses. [`SystemResolver`] in production; tests inject their own to
/// play a hostile DNS server.
#[async_trait]
pub trait HostResolver: Send + Sync + 'static {
    /// All addresses of `host`; the port is chosen by the URL.
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver (`getaddrinfo` via [`tokio::net::lookup_host`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

#[async_trait]
impl HostResolver for SystemResolver {
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, 0)).await?.map(|addr| addr.ip()).collect())
    }
}

/// Why the guarded resolver refused a name. Travels through reqwest's error chain and is turned
/// back into a [`FetchError`](crate::FetchError) by the fetcher.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("{host} resolves only to blocked addresses")]
    OnlyBlocked { host: String },
    #[error("{host} could not be resolved")]
    Failed {
        host: String,
        #[source]
        source: Option<Arc<io::Error>>,
    },
}

/// reqwest's resolver: asks a [`HostResolver`], then drops every blocked address unless private
/// networks are allowed.
pub(crate) struct GuardedResolver {
    pub(crate) inner: Arc<dyn HostResolver>,
    pub(crate) allow_private_networks: bool,
}

impl GuardedResolver {
    async fn checked(
        inner: Arc<dyn HostResolver>,
        host: String,
        allow_private_networks: bool,
    ) -> Result<Vec<IpAddr>, Refusal> {
        let found = match inner.lookup(&host).await {
            Ok(found) if !found.is_empty() => found,
            Ok(_) => return Err(Refusal::Failed { host, source: None }),
            Err(e) => {
                return Err(Refusal::Failed { host, source: Some(Arc::new(e)) });
            }
        };
        if allow_private_networks {
            return Ok(found);
        }
        let (kept, dropped): (Vec<IpAddr>, Vec<IpAddr>) = found.into_iter().partition(|ip| !is_blocked(*ip));
        if !dropped.is_empty() {
            tracing::warn!(%host, ?dropped, "dropped blocked addresses of an outbound fetch");
        }
        if kept.is_empty() {
            return Err(Refusal::OnlyBlocked { host });
        }
        Ok(kept)
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let inner = Arc::clone(&self.inner);
        let allow = self.allow_private_networks;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let kept = Self::checked(inner, host, allow).await?;
            // Port 0: reqwest substitutes the URL's port.
            let addrs: Addrs = Box::new(kept.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Table(HashMap<&'static str, Vec<IpAddr>>);

    #[async_trait]
    impl HostResolver for Table {
        async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
            self.0.get(host).cloned().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such host"))
        }
    }

    fn guarded(allow_private_networks: bool) -> GuardedResolver {
        let ips = |list: &[&str]| list.iter().map(|s| s.parse().unwrap()).collect::<Vec<_>>();
        let table = Table(HashMap::from([
            (
                "mixed.test",
                ips(&[
                    "127.0.0.1",
                    "93.184.215.14",
                    "10.0.0.1",
                    "::ffff:169.254.169.254",
                    "2606:4700::1111",
                    "fd00::1",
                ]),
            ),
            ("private.test", ips(&["10.0.0.1", "::1"])),
            ("empty.test", vec![]),
        ]));
        GuardedResolver { inner: Arc::new(table), allow_private_networks }
    }

    async fn resolve(resolver: &GuardedResolver, host: &str) -> Result<Vec<SocketAddr>, String> {
        match resolver.resolve(host.parse().unwrap()).await {
            Ok(addrs) => Ok(addrs.collect()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[tokio::test]
    async fn keeps_only_public_addresses_of_a_mixed_answer() {
        let addrs = resolve(&guarded(false), "mixed.test").await.unwrap();
        let expected: Vec<SocketAddr> =
            vec!["93.184.215.14:0".parse().unwrap(), "[2606:4700::1111]:0".parse().unwrap()];
        assert_eq!(addrs, expected);
    }

    #[tokio::test]
    async fn refuses_a_host_with_only_blocked_addresses() {
        let err = resolve(&guarded(false), "private.test").await.unwrap_err();
        assert_eq!(err, "private.test resolves only to blocked addresses");
    }

    #[tokio::test]
    async fn allow_private_networks_keeps_everything() {
        assert_eq!(resolve(&guarded(true), "mixed.test").await.unwrap().len(), 6);
        assert_eq!(resolve(&guarded(true), "private.test").await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn no_answer_is_a_resolution_failure() {
        for host in ["empty.test", "unknown.test"] {
            let err = resolve(&guarded(false), host).await.unwrap_err();
            assert_eq!(err, format!("{host} could not be resolved"));
        }
    }
}
