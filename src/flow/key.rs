use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

/// One end of a flow. `port` is `None` for protocols without ports and for
/// packets whose transport header is missing (fragments without their first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: Option<u16>,
}

/// The canonical, direction-free identity of a flow: the protocol and the
/// two endpoints in a fixed order, so both directions of a conversation
/// hash to the same key.
///
/// Addresses are stored as 128-bit integers (IPv4 in the low 32 bits) so
/// that hashing and comparing a key is a few word operations: this is the
/// per-packet hot path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey {
    /// The smaller and the larger endpoint's address, each as the high and
    /// the low 64 bits (not `u128`, whose 16-byte alignment would pad the
    /// key by 8 bytes).
    addrs: [[u64; 2]; 2],
    ports: [u16; 2],
    pub protocol: u8,
    /// [`KEY_V4`] and [`KEY_PORTS`].
    flags: u8,
    /// The tunnels around the flow, as a [`TunnelId`] (0: none): the same
    /// inner addresses in two tunnels are two flows.
    tunnel: u16,
}

/// A chain of tunnel layers, interned in the flow table's tunnel registry.
/// Two bytes fill the key's padding, so the key stays 40 bytes.
pub type TunnelId = u16;

impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Three word writes instead of the derived per-array length prefixes
        // and byte slices.
        state.write_u64(self.addrs[0][0]);
        state.write_u64(self.addrs[0][1]);
        state.write_u64(self.addrs[1][0]);
        state.write_u64(self.addrs[1][1]);
        state.write_u64(
            u64::from(self.ports[0])
                | u64::from(self.ports[1]) << 16
                | u64::from(self.protocol) << 32
                | u64::from(self.flags) << 40
                | u64::from(self.tunnel) << 48,
        );
    }
}

const KEY_V4: u8 = 1;
const KEY_PORTS: u8 = 2;

/// Which way a packet travels relative to a [`FlowKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    /// From the smaller endpoint to the larger.
    LoToHi = 0,
    /// From the larger endpoint to the smaller.
    HiToLo = 1,
}

impl Way {
    /// The other direction.
    pub fn reverse(self) -> Way {
        match self {
            Way::LoToHi => Way::HiToLo,
            Way::HiToLo => Way::LoToHi,
        }
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl FlowKey {
    /// The key of a packet from `src` to `dst`, and which way it travels.
    ///
    /// Both endpoints are of the same address family and either both or
    /// neither have a port, as they come from one IP header.
    pub fn new(protocol: u8, src: Endpoint, dst: Endpoint) -> (FlowKey, Way) {
        Self::within(0, protocol, src, dst)
    }

    /// The key of a packet inside the tunnels `tunnel` (0: none).
    pub fn within(tunnel: TunnelId, protocol: u8, src: Endpoint, dst: Endpoint) -> (FlowKey, Way) {
        let mut flags = if src.ip.is_ipv4() { KEY_V4 } else { 0 };
        if src.port.is_some() {
            flags |= KEY_PORTS;
        }
        let a = (bits(src.ip), src.port.unwrap_or(0));
        let b = (bits(dst.ip), dst.port.unwrap_or(0));
        let (lo, hi, way) = if a <= b { (a, b, Way::LoToHi) } else { (b, a, Way::HiToLo) };
        let split = |a: u128| [(a >> 64) as u64, a as u64];
        let key = FlowKey {
            addrs: [split(lo.0), split(hi.0)],
            ports: [lo.1, hi.1],
            protocol,
            flags,
            tunnel,
        };
        (key, way)
    }

    /// The tunnels around the flow (0: none).
    pub fn tunnel(&self) -> TunnelId {
        self.tunnel
    }

    /// The endpoint that sends in direction `way`.
    pub fn sender(&self, way: Way) -> Endpoint {
        let i = way as usize;
        let [high, low] = self.addrs[i];
        let ip = if self.flags & KEY_V4 != 0 {
            // Only the low 32 bits are set for IPv4.
            IpAddr::V4(Ipv4Addr::from(low as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(u128::from(high) << 64 | u128::from(low)))
        };
        Endpoint { ip, port: (self.flags & KEY_PORTS != 0).then_some(self.ports[i]) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Two endpoints of one IP header: same family, ports on both or none.
    fn endpoints() -> impl Strategy<Value = (Endpoint, Endpoint)> {
        (any::<bool>(), any::<[u8; 16]>(), any::<[u8; 16]>(), any::<Option<(u16, u16)>>()).prop_map(
            |(v4, a, b, ports)| {
                let ip = |x: [u8; 16]| {
                    if v4 {
                        IpAddr::from([x[0], x[1], x[2], x[3]])
                    } else {
                        IpAddr::from(x)
                    }
                };
                (
                    Endpoint { ip: ip(a), port: ports.map(|p| p.0) },
                    Endpoint { ip: ip(b), port: ports.map(|p| p.1) },
                )
            },
        )
    }

    proptest! {
        #[test]
        fn key_is_the_same_in_both_directions(p in any::<u8>(), (a, b) in endpoints()) {
            let (k1, w1) = FlowKey::new(p, a, b);
            let (k2, w2) = FlowKey::new(p, b, a);
            prop_assert_eq!(k1, k2);
            prop_assert_eq!(k1.sender(w1), a);
            prop_assert_eq!(k2.sender(w2), b);
            prop_assert_eq!(k1.sender(w1.reverse()), b);
            if a != b {
                prop_assert_eq!(w1, w2.reverse());
            }
        }
    }

    #[test]
    fn families_and_portless_flows_stay_apart() {
        let v4 = Endpoint { ip: "0.0.0.1".parse().unwrap(), port: None };
        let v6 = Endpoint { ip: "::1".parse().unwrap(), port: None };
        assert_ne!(FlowKey::new(1, v4, v4).0, FlowKey::new(1, v6, v6).0);
        let with_port = Endpoint { port: Some(0), ..v4 };
        assert_ne!(FlowKey::new(17, v4, v4).0, FlowKey::new(17, with_port, with_port).0);
        assert_ne!(FlowKey::within(1, 1, v4, v4).0, FlowKey::within(2, 1, v4, v4).0);
        assert_eq!(std::mem::size_of::<FlowKey>(), 40);
    }
}
