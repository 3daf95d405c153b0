use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

/// The networks whose hosts are "ours": the local side of a flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalNetworks {
    nets: Vec<IpNet>,
}

/// Private and special-purpose ranges (RFC 6890) that never name a host in
/// another jurisdiction: the default local networks. The documentation
/// ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) are
/// deliberately absent so that tests can use them as remote endpoints.
pub const DEFAULT_LOCAL_NETWORKS: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

impl Default for LocalNetworks {
    fn default() -> Self {
        let nets = DEFAULT_LOCAL_NETWORKS.iter().filter_map(|n| n.parse().ok()).collect();
        Self { nets }
    }
}

impl LocalNetworks {
    /// Exactly these networks.
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self { nets }
    }

    /// Is `ip` inside one of the local networks?
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The networks.
    pub fn networks(&self) -> &[IpNet] {
        &self.nets
    }

    /// The direction of a flow from its initiator and responder.
    pub fn direction(&self, initiator: IpAddr, responder: IpAddr) -> Direction {
        match (self.contains(initiator), self.contains(responder)) {
            (true, true) => Direction::Internal,
            (true, false) => Direction::Outbound,
            (false, true) => Direction::Inbound,
            (false, false) => Direction::External,
        }
    }
}

/// ECS `network.direction` of a flow, seen from the local networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// A local host initiated it towards a remote one.
    Outbound,
    /// A remote host initiated it towards a local one.
    Inbound,
    /// Both ends are local.
    Internal,
    /// Neither end is local; the responder counts as the remote end.
    External,
}

impl Direction {
    /// Whether the remote end is the responder (`Some(true)`), the initiator
    /// (`Some(false)`) or neither (internal flows).
    pub fn remote_is_responder(self) -> Option<bool> {
        match self {
            Direction::Outbound | Direction::External => Some(true),
            Direction::Inbound => Some(false),
            Direction::Internal => None,
        }
    }

    /// The ECS keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
            Direction::Internal => "internal",
            Direction::External => "external",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_networks_classify_directions() {
        let l = LocalNetworks::default();
        assert_eq!(l.networks().len(), DEFAULT_LOCAL_NETWORKS.len());
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(l.direction(ip("192.168.1.2"), ip("47.88.1.1")), Direction::Outbound);
        assert_eq!(l.direction(ip("2001:db8::1"), ip("fd00::1")), Direction::Inbound);
        assert_eq!(l.direction(ip("10.0.0.1"), ip("100.64.0.1")), Direction::Internal);
        assert_eq!(l.direction(ip("198.51.100.1"), ip("203.0.113.9")), Direction::External);
    }
}
