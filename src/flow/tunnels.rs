//! The tunnel chains flows are keyed on, interned as small ids so that a
//! flow key stays 40 bytes.
//!
//! A chain's identity is, per layer outermost first, the tunnel kind, the
//! unordered pair of outer addresses and the identifier where both
//! directions carry the same one ([`TunnelLayer::identity`]). Each flow's
//! record shows the chain as the flow's own first packet showed it (outer
//! addresses in its direction, its TEID), kept here per live flow where it
//! differs from the chain as first interned. Chains no live flow or
//! fragment uses are released at the table's periodic sweep; at most
//! [`MAX_TUNNELS`] are alive at once (more is an anomaly, and those packets
//! count on their outer flow only).

use std::collections::HashMap;

use crate::decode::{TunnelChain, TunnelKind, TunnelLayer, MAX_TUNNEL_DEPTH};
use crate::last_few::LastFew;

use super::key::TunnelId;

/// Most tunnel chains alive at once (ids 1 to 65,535; 0 is "no tunnel").
pub const MAX_TUNNELS: usize = u16::MAX as usize;

type LayerIdentity = (TunnelKind, [std::net::IpAddr; 2], Option<u32>);

/// A chain's identity as a fixed-size value, so that looking one up
/// allocates nothing.
type ChainIdentity = [Option<LayerIdentity>; MAX_TUNNEL_DEPTH];

fn identity(chain: &[TunnelLayer]) -> ChainIdentity {
    let mut id = [None; MAX_TUNNEL_DEPTH];
    for (slot, layer) in id.iter_mut().zip(chain) {
        *slot = Some(layer.identity());
    }
    id
}

/// Chains remembered as packets showed them ([`TunnelRegistry::recent`]).
const RECENT_CHAINS: usize = 4;

/// A chain as a packet showed it, with its id.
#[derive(Clone, Copy, Debug)]
struct ShownChain {
    layers: [TunnelLayer; MAX_TUNNEL_DEPTH],
    len: usize,
    id: TunnelId,
}

impl ShownChain {
    fn layers(&self) -> &[TunnelLayer] {
        self.layers.get(..self.len).unwrap_or_default()
    }
}

/// Interned tunnel chains.
#[derive(Debug, Default)]
pub struct TunnelRegistry {
    ids: HashMap<ChainIdentity, TunnelId, ahash::RandomState>,
    /// Indexed by id - 1; `None` for a released id.
    chains: Vec<Option<(ChainIdentity, TunnelChain)>>,
    free: Vec<TunnelId>,
    /// The chain last interned, as that packet showed it, and its id.
    current: (TunnelId, Vec<TunnelLayer>),
    /// Each live flow's chain as its first packet showed it, by flow id,
    /// where that is not the chain of its id as first seen ([`Self::chain`]):
    /// a mirror's packets all show their tunnel one way, so most flows
    /// need no copy of their own.
    per_flow: HashMap<u64, TunnelChain, ahash::RandomState>,
    /// The last few chains interned, as their packets showed them:
    /// consecutive packets mostly travel the same few tunnels (a mirror
    /// session's VTEPs and VNIs), and comparing a layer or two costs far
    /// less than hashing a chain's identity. Emptied when chains are
    /// released, so that every id here is alive.
    recent: LastFew<ShownChain, RECENT_CHAINS>,
}

impl TunnelRegistry {
    /// The id of `chain` (at most [`MAX_TUNNEL_DEPTH`] layers), interning
    /// it; `None` when [`MAX_TUNNELS`] chains are alive.
    pub fn intern(&mut self, chain: &[TunnelLayer]) -> Option<TunnelId> {
        let seen = self.recent.position(|c| c.layers() == chain);
        let id = match seen.and_then(|at| self.recent.get(at)) {
            // The same layers: the same identity.
            Some(c) => c.id,
            None => {
                let id = self.intern_identity(chain)?;
                self.remember(chain, id);
                id
            }
        };
        self.current.0 = id;
        self.current.1.clear();
        self.current.1.extend_from_slice(chain);
        Some(id)
    }

    fn remember(&mut self, chain: &[TunnelLayer], id: TunnelId) {
        let Some(first) = chain.first() else { return };
        if chain.len() > MAX_TUNNEL_DEPTH {
            return;
        }
        let mut shown = ShownChain { layers: [*first; MAX_TUNNEL_DEPTH], len: chain.len(), id };
        shown.layers[..chain.len()].copy_from_slice(chain);
        self.recent.keep(shown);
    }

    fn intern_identity(&mut self, chain: &[TunnelLayer]) -> Option<TunnelId> {
        let identity = identity(chain);
        if let Some(&id) = self.ids.get(&identity) {
            return Some(id);
        }
        let id = match self.free.pop() {
            Some(id) => id,
            None if self.chains.len() < MAX_TUNNELS => {
                self.chains.push(None);
                self.chains.len() as TunnelId
            }
            None => return None,
        };
        self.chains[usize::from(id) - 1] = Some((identity, TunnelChain::new(chain)));
        self.ids.insert(identity, id);
        Some(id)
    }

    /// Flow `flow` started inside tunnel `id` (0: none) with the packet
    /// whose chain was interned last.
    pub fn flow_started(&mut self, flow: u64, id: TunnelId) {
        if id != 0 && self.current.0 == id && self.current.1 != self.chain(id) {
            self.per_flow.insert(flow, TunnelChain::new(&self.current.1));
        }
    }

    /// Flow `flow`'s chain (inside tunnel `id`) as its first packet showed
    /// it.
    pub fn chain_of(&self, flow: u64, id: TunnelId) -> TunnelChain {
        match self.per_flow.get(&flow) {
            Some(chain) => chain.clone(),
            None => self.shared_chain(id),
        }
    }

    /// [`TunnelRegistry::chain_of`] for a flow that ended: forgotten here.
    pub fn take_chain(&mut self, flow: u64, id: TunnelId) -> TunnelChain {
        if id == 0 {
            return TunnelChain::default();
        }
        match self.per_flow.remove(&flow) {
            Some(chain) => chain,
            None => self.shared_chain(id),
        }
    }

    /// [`Self::chain`], shared.
    fn shared_chain(&self, id: TunnelId) -> TunnelChain {
        self.stored(id).cloned().unwrap_or_default()
    }

    fn stored(&self, id: TunnelId) -> Option<&TunnelChain> {
        let (_, chain) = self.chains.get(usize::from(id).checked_sub(1)?)?.as_ref()?;
        Some(chain)
    }

    /// The chain of `id`, outermost first, as the first packet inside it
    /// showed it (empty for 0 or a released id).
    pub fn chain(&self, id: TunnelId) -> &[TunnelLayer] {
        self.stored(id).map_or(&[], |chain| chain)
    }

    /// Chains alive.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no chain is alive.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Releases every chain whose id `in_use` does not hold.
    pub fn retain(&mut self, in_use: &IdSet) {
        self.recent.clear();
        if !in_use.contains(self.current.0) {
            self.current = (0, Vec::new());
        }
        for (i, slot) in self.chains.iter_mut().enumerate() {
            let id = (i + 1) as TunnelId;
            if slot.is_some() && !in_use.contains(id) {
                if let Some((identity, _)) = slot.take() {
                    self.ids.remove(&identity);
                }
                self.free.push(id);
            }
        }
    }
}

/// A set of tunnel ids (a bit per possible id: 8 KiB).
pub struct IdSet(Vec<u64>);

impl Default for IdSet {
    fn default() -> Self {
        Self(vec![0; (MAX_TUNNELS + 1).div_ceil(64)])
    }
}

impl IdSet {
    pub fn insert(&mut self, id: TunnelId) {
        self.0[usize::from(id) / 64] |= 1 << (id % 64);
    }

    pub fn contains(&self, id: TunnelId) -> bool {
        self.0[usize::from(id) / 64] & (1 << (id % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vxlan(vni: u32, a: u8, b: u8) -> TunnelLayer {
        TunnelLayer {
            kind: TunnelKind::Vxlan,
            src: [192, 0, 2, a].into(),
            dst: [192, 0, 2, b].into(),
            id: Some(vni),
        }
    }

    #[test]
    fn chains_are_interned_by_identity_and_released_when_unused() {
        let mut r = TunnelRegistry::default();
        let a = r.intern(&[vxlan(1, 1, 2)]).unwrap();
        assert_eq!(r.intern(&[vxlan(1, 2, 1)]), Some(a), "the reverse direction");
        let b = r.intern(&[vxlan(2, 1, 2)]).unwrap();
        assert_ne!(a, b);
        let nested = r.intern(&[vxlan(1, 1, 2), vxlan(9, 3, 4)]).unwrap();
        assert_ne!(nested, a);
        assert_eq!(r.chain(a), &[vxlan(1, 1, 2)], "as first seen");
        assert_eq!(r.chain(0), &[]);
        let mut used = IdSet::default();
        used.insert(b);
        r.retain(&used);
        assert_eq!(r.len(), 1);
        assert_eq!(r.chain(a), &[]);
        assert_eq!(r.chain(b), &[vxlan(2, 1, 2)]);
        // A released id is reused.
        let c = r.intern(&[vxlan(3, 1, 2)]).unwrap();
        assert!(c == a || c == nested);
    }

    #[test]
    fn the_registry_is_bounded() {
        let mut r = TunnelRegistry::default();
        for vni in 0..MAX_TUNNELS as u32 {
            assert!(r.intern(&[vxlan(vni, 1, 2)]).is_some());
        }
        assert_eq!(r.intern(&[vxlan(u32::MAX, 1, 2)]), None);
        assert!(r.intern(&[vxlan(7, 1, 2)]).is_some(), "a known chain still has its id");
        r.retain(&IdSet::default());
        assert!(r.is_empty());
        assert!(r.intern(&[vxlan(u32::MAX, 1, 2)]).is_some());
    }

    #[test]
    fn a_released_id_given_to_another_chain_is_not_answered_for_the_old_one() {
        let mut r = TunnelRegistry::default();
        let a = r.intern(&[vxlan(1, 1, 2)]).unwrap();
        assert_eq!(r.intern(&[vxlan(1, 1, 2)]), Some(a), "remembered");
        r.retain(&IdSet::default());
        // The freed id goes to the next new chain...
        let b = r.intern(&[vxlan(2, 1, 2)]).unwrap();
        assert_eq!(b, a);
        // ...so the first chain, seen again, is a new one.
        let again = r.intern(&[vxlan(1, 1, 2)]).unwrap();
        assert_ne!(again, b);
        assert_eq!(r.chain(again), &[vxlan(1, 1, 2)]);
        assert_eq!(r.chain(b), &[vxlan(2, 1, 2)]);
    }

    #[test]
    fn more_chains_than_are_remembered_keep_their_ids() {
        let mut r = TunnelRegistry::default();
        let ids: Vec<TunnelId> = (0..3 * RECENT_CHAINS as u32)
            .map(|vni| r.intern(&[vxlan(vni, 1, 2)]).unwrap())
            .collect();
        for (vni, id) in (0..3 * RECENT_CHAINS as u32).zip(&ids).rev() {
            assert_eq!(r.intern(&[vxlan(vni, 2, 1)]), Some(*id), "the reverse direction");
            assert_eq!(r.intern(&[vxlan(vni, 1, 2)]), Some(*id));
        }
    }

    #[test]
    fn a_flow_showing_its_tunnel_as_first_seen_keeps_no_copy() {
        let mut r = TunnelRegistry::default();
        let id = r.intern(&[vxlan(1, 1, 2)]).unwrap();
        r.flow_started(1, id);
        assert!(r.per_flow.is_empty());
        r.intern(&[vxlan(1, 2, 1)]);
        r.flow_started(2, id);
        assert_eq!(r.per_flow.len(), 1, "the other way round");
        assert_eq!(r.take_chain(1, id)[..], [vxlan(1, 1, 2)]);
        assert_eq!(r.take_chain(2, id)[..], [vxlan(1, 2, 1)]);
    }

    #[test]
    fn each_flow_keeps_the_chain_its_first_packet_showed() {
        let mut r = TunnelRegistry::default();
        let gtp = |teid: u32, a: u8, b: u8| TunnelLayer {
            kind: TunnelKind::GtpU,
            id: Some(teid),
            ..vxlan(0, a, b)
        };
        let id = r.intern(&[gtp(0x111, 1, 2)]).unwrap();
        r.flow_started(1, id);
        assert_eq!(r.intern(&[gtp(0x222, 2, 1)]), Some(id), "one tunnel");
        r.flow_started(2, id);
        assert_eq!(r.chain_of(1, id)[..], [gtp(0x111, 1, 2)]);
        assert_eq!(r.chain_of(2, id)[..], [gtp(0x222, 2, 1)]);
        assert_eq!(r.take_chain(2, id)[..], [gtp(0x222, 2, 1)]);
        // Forgotten: the tunnel's chain as first seen.
        assert_eq!(r.chain_of(2, id)[..], [gtp(0x111, 1, 2)]);
        assert!(r.take_chain(3, 0).is_empty());
    }
}
