use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

/// The networks whose hosts are "ours": the local side of a flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalNetworks {
    nets: Vec<IpNet>,
    /// The same networks as (address, mask), by family: every flow's two
    /// addresses are tested when it ends, on the reader's thread, and a
    /// public address against every network (`IpNet::contains` took
    /// about 1,000 instructions a flow).
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
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
        Self::new(DEFAULT_LOCAL_NETWORKS.iter().filter_map(|n| n.parse().ok()).collect())
    }
}

impl LocalNetworks {
    /// Exactly these networks.
    pub fn new(nets: Vec<IpNet>) -> Self {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for net in &nets {
            match net {
                IpNet::V4(n) => {
                    v4.push((u32::from(n.network()), u32::from(n.netmask())));
                }
                IpNet::V6(n) => {
                    v6.push((u128::from(n.network()), u128::from(n.netmask())));
                }
            }
        }
        Self { nets, v4, v6 }
    }

    /// Is `ip` inside one of the local networks?
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(ip) => {
                let ip = u32::from(ip);
                self.v4.iter().any(|&(net, mask)| ip & mask == net)
            }
            IpAddr::V6(ip) => {
                let ip = u128::from(ip);
                self.v6.iter().any(|&(net, mask)| ip & mask == net)
            }
        }
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

    proptest::proptest! {
        /// The masks say what the networks say, for any networks (host
        /// bits set or not) and addresses of either family.
        #[test]
        fn masks_agree_with_the_networks(
            nets in proptest::collection::vec((proptest::prelude::any::<u128>(), 0u8..=128, proptest::prelude::any::<bool>()), 0..8),
            near in proptest::prelude::any::<u128>(),
            flip in 0u32..128,
            v4 in proptest::prelude::any::<bool>(),
        ) {
            let nets: Vec<IpNet> = nets
                .into_iter()
                .filter_map(|(a, len, four)| if four {
                    ipnet::Ipv4Net::new((a as u32).into(), len % 33).ok().map(IpNet::V4)
                } else {
                    ipnet::Ipv6Net::new(a.into(), len).ok().map(IpNet::V6)
                })
                .collect();
            // Near a listed network, so that matches are not all misses.
            let base = nets.first().map_or(near, |n| match n.addr() {
                IpAddr::V4(a) => u128::from(u32::from(a)),
                IpAddr::V6(a) => u128::from(a),
            });
            let bits = base ^ ((1u128 << flip) & near);
            let ip = if v4 { IpAddr::from((bits as u32).to_be_bytes()) } else { IpAddr::from(bits.to_be_bytes()) };
            let local = LocalNetworks::new(nets.clone());
            proptest::prop_assert_eq!(local.contains(ip), nets.iter().any(|n| n.contains(&ip)));
        }
    }
}
