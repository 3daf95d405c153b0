use std::net::IpAddr;

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowKey {
    pub protocol: u8,
    /// The smaller endpoint.
    pub lo: Endpoint,
    /// The larger endpoint.
    pub hi: Endpoint,
}

/// Which way a packet travels relative to a [`FlowKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    /// From `lo` to `hi`.
    LoToHi = 0,
    /// From `hi` to `lo`.
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

impl FlowKey {
    /// The key of a packet from `src` to `dst`, and which way it travels.
    pub fn new(protocol: u8, src: Endpoint, dst: Endpoint) -> (FlowKey, Way) {
        if src <= dst {
            (FlowKey { protocol, lo: src, hi: dst }, Way::LoToHi)
        } else {
            (FlowKey { protocol, lo: dst, hi: src }, Way::HiToLo)
        }
    }

    /// The endpoint that sends in direction `way`.
    pub fn sender(&self, way: Way) -> Endpoint {
        match way {
            Way::LoToHi => self.lo,
            Way::HiToLo => self.hi,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn endpoint() -> impl Strategy<Value = Endpoint> {
        (any::<bool>(), any::<u32>(), any::<u128>(), any::<Option<u16>>()).prop_map(
            |(v4, a, b, port)| {
                let ip =
                    if v4 { IpAddr::from(a.to_be_bytes()) } else { IpAddr::from(b.to_be_bytes()) };
                Endpoint { ip, port }
            },
        )
    }

    proptest! {
        #[test]
        fn key_is_the_same_in_both_directions(p in any::<u8>(), a in endpoint(), b in endpoint()) {
            let (k1, w1) = FlowKey::new(p, a, b);
            let (k2, w2) = FlowKey::new(p, b, a);
            prop_assert_eq!(k1, k2);
            prop_assert_eq!(k1.sender(w1), a);
            prop_assert_eq!(k2.sender(w2), b);
            if a != b {
                prop_assert_eq!(w1, w2.reverse());
            }
        }
    }
}
