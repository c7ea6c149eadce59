//! Pod IPs: taken from the node's `spec.podCIDR` when set, else from a
//! per-node /24 in 100.64.0.0/10 chosen by the node's index, so that
//! simulated nodes without a CIDR allocator still give unique pod IPs.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

pub struct IpPool {
    base: u32,
    /// Usable host offsets: first address and broadcast excluded, and the
    /// first host left for the node's bridge as upstream's bridge CNI does.
    size: u32,
    free: BTreeSet<u32>,
    by_pod: HashMap<String, u32>,
    next: u32,
}

impl IpPool {
    /// A pool over an IPv4 CIDR (`10.244.3.0/24`); capped at 4,094
    /// addresses (a node runs at most a few hundred pods).
    pub fn from_cidr(cidr: &str) -> Option<IpPool> {
        let (addr, len) = cidr.split_once('/')?;
        let addr: Ipv4Addr = addr.parse().ok()?;
        let len: u32 = len.parse().ok()?;
        if !(8..=30).contains(&len) {
            return None;
        }
        let mask = u32::MAX << (32 - len);
        let base = u32::from(addr) & mask;
        let size = ((1u32 << (32 - len)) - 2).min(4094);
        Some(IpPool::new(base, size))
    }

    /// The fallback range for the node with this index.
    pub fn for_index(index: u32) -> IpPool {
        let base = u32::from(Ipv4Addr::new(100, 64, 0, 0)) + ((index % 16384) << 8);
        IpPool::new(base, 254)
    }

    fn new(base: u32, size: u32) -> IpPool {
        IpPool {
            base,
            size,
            free: BTreeSet::new(),
            by_pod: HashMap::new(),
            // .1 is the bridge's gateway.
            next: 2,
        }
    }

    /// The pod's address, allocating one the first time.
    pub fn allocate(&mut self, pod_uid: &str) -> Option<Ipv4Addr> {
        if let Some(off) = self.by_pod.get(pod_uid) {
            return Some(Ipv4Addr::from(self.base + off));
        }
        let off = match self.free.pop_first() {
            Some(off) => off,
            None if self.next <= self.size => {
                self.next += 1;
                self.next - 1
            }
            None => return None,
        };
        self.by_pod.insert(pod_uid.to_owned(), off);
        Some(Ipv4Addr::from(self.base + off))
    }

    /// Records an address a pod already has (after a kubelet restart).
    pub fn reserve(&mut self, pod_uid: &str, ip: Ipv4Addr) {
        let off = u32::from(ip).wrapping_sub(self.base);
        if off == 0 || off > self.size || self.by_pod.contains_key(pod_uid) {
            return;
        }
        if off >= self.next {
            for o in self.next..off {
                self.free.insert(o);
            }
            self.next = off + 1;
        } else if !self.free.remove(&off) {
            return; // taken by another pod
        }
        self.by_pod.insert(pod_uid.to_owned(), off);
    }

    pub fn release(&mut self, pod_uid: &str) {
        if let Some(off) = self.by_pod.remove(pod_uid) {
            self.free.insert(off);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_reuses_and_reserves() {
        let mut p = IpPool::from_cidr("10.244.1.0/24").unwrap();
        assert_eq!(p.allocate("a"), Some(Ipv4Addr::new(10, 244, 1, 2)));
        assert_eq!(p.allocate("a"), Some(Ipv4Addr::new(10, 244, 1, 2)));
        assert_eq!(p.allocate("b"), Some(Ipv4Addr::new(10, 244, 1, 3)));
        p.release("a");
        assert_eq!(p.allocate("c"), Some(Ipv4Addr::new(10, 244, 1, 2)));
        p.reserve("d", Ipv4Addr::new(10, 244, 1, 9));
        assert_eq!(p.allocate("e"), Some(Ipv4Addr::new(10, 244, 1, 4)));
        let mut q = IpPool::for_index(1);
        assert_eq!(q.allocate("x"), Some(Ipv4Addr::new(100, 64, 1, 2)));
    }

    #[test]
    fn runs_out() {
        let mut p = IpPool::from_cidr("10.0.0.0/30").unwrap();
        assert!(p.allocate("a").is_some());
        assert!(p.allocate("b").is_none());
    }
}
