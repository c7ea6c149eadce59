//! The scheduling queue as upstream: an active queue ordered by
//! PrioritySort, a backoff queue (per-pod exponential backoff, 1s doubling
//! to 10s), and unschedulable pods parked until a cluster event may help
//! them (or 5 minutes pass).

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::nodeinfo::PodInfo;
use crate::plugins::node_basics::PrioritySort;

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
pub const MAX_IN_UNSCHEDULABLE: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    Active,
    Backoff,
    Unschedulable,
    /// Held back by a PreEnqueue plugin (scheduling gates).
    Gated,
    InFlight,
}

#[derive(Debug)]
struct Entry {
    pod: Arc<PodInfo>,
    location: Location,
    /// When the pod was (re)queued: PrioritySort's tie breaker.
    timestamp: Instant,
    attempts: u32,
    seq: u64,
    /// When it last failed, for backoff and the 5 minute flush.
    last_failure: Option<Instant>,
}

struct ActiveItem {
    priority: i32,
    timestamp: Instant,
    seq: u64,
    uid: String,
}

impl PartialEq for ActiveItem {
    fn eq(&self, o: &Self) -> bool {
        self.seq == o.seq
    }
}
impl Eq for ActiveItem {}
impl PartialOrd for ActiveItem {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for ActiveItem {
    // BinaryHeap pops the greatest: the one PrioritySort puts first.
    fn cmp(&self, o: &Self) -> Ordering {
        PrioritySort::less(self.priority, self.timestamp, o.priority, o.timestamp)
            .reverse()
            .then(o.seq.cmp(&self.seq))
    }
}

/// A pod handed out by [`SchedulingQueue::pop`].
#[derive(Debug, Clone)]
pub struct Popped {
    pub pod: Arc<PodInfo>,
    pub attempts: u32,
    pub cycle: u64,
}

#[derive(Default)]
pub struct SchedulingQueue {
    entries: HashMap<String, Entry>,
    active: BinaryHeap<ActiveItem>,
    backoff: BinaryHeap<Reverse<(Instant, u64, String)>>,
    seq: u64,
    scheduling_cycle: u64,
    move_request_cycle: u64,
}

pub fn backoff_duration(attempts: u32) -> Duration {
    let mut d = INITIAL_BACKOFF;
    for _ in 1..attempts {
        d *= 2;
        if d > MAX_BACKOFF {
            return MAX_BACKOFF;
        }
    }
    d
}

impl SchedulingQueue {
    pub fn new() -> Self {
        Self::default()
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn push_active(&mut self, uid: &str, now: Instant) {
        let seq = self.next_seq();
        let Some(e) = self.entries.get_mut(uid) else {
            return;
        };
        e.location = Location::Active;
        e.seq = seq;
        e.timestamp = now;
        self.active.push(ActiveItem {
            priority: e.pod.priority,
            timestamp: now,
            seq,
            uid: uid.to_owned(),
        });
    }

    fn push_backoff(&mut self, uid: &str) {
        let seq = self.next_seq();
        let Some(e) = self.entries.get_mut(uid) else {
            return;
        };
        e.location = Location::Backoff;
        e.seq = seq;
        let expiry = e.last_failure.unwrap_or_else(Instant::now) + backoff_duration(e.attempts);
        self.backoff.push(Reverse((expiry, seq, uid.to_owned())));
    }

    fn backoff_expired(e: &Entry, now: Instant) -> bool {
        e.last_failure
            .is_none_or(|t| t + backoff_duration(e.attempts) <= now)
    }

    /// A new pending pod; `gated` when a PreEnqueue plugin rejected it.
    pub fn add(&mut self, pod: Arc<PodInfo>, gated: bool) {
        let uid = pod.uid.clone();
        let now = Instant::now();
        if let Some(e) = self.entries.get_mut(&uid) {
            e.pod = pod;
            return;
        }
        self.entries.insert(
            uid.clone(),
            Entry {
                pod,
                location: Location::Gated,
                timestamp: now,
                attempts: 0,
                seq: 0,
                last_failure: None,
            },
        );
        if !gated {
            self.push_active(&uid, now);
        }
    }

    /// An update of a pending pod: the new copy, and a retry now for an
    /// unschedulable or gated one (the change may have fixed it).
    pub fn update(&mut self, pod: Arc<PodInfo>, gated: bool) {
        let uid = pod.uid.clone();
        let Some(e) = self.entries.get_mut(&uid) else {
            self.add(pod, gated);
            return;
        };
        let priority_changed = e.pod.priority != pod.priority;
        // Status-only updates (our own PodScheduled condition among them)
        // cannot make the pod fit; spec or label changes may.
        let changed =
            e.pod.pod.spec != pod.pod.spec || e.pod.pod.metadata.labels != pod.pod.metadata.labels;
        let was_gated = e.location == Location::Gated;
        e.pod = pod;
        match e.location {
            Location::Gated | Location::Unschedulable if !gated && (changed || was_gated) => {
                if Self::backoff_expired(e, Instant::now()) {
                    self.push_active(&uid, Instant::now());
                } else {
                    self.push_backoff(&uid);
                }
            }
            Location::Active if priority_changed => {
                let ts = e.timestamp;
                self.push_active(&uid, ts);
            }
            _ => {}
        }
    }

    pub fn delete(&mut self, uid: &str) {
        self.entries.remove(uid);
    }

    pub fn contains(&self, uid: &str) -> bool {
        self.entries.contains_key(uid)
    }

    /// The next pod to schedule, if any is active.
    pub fn pop(&mut self) -> Option<Popped> {
        while let Some(item) = self.active.pop() {
            let Some(e) = self.entries.get_mut(&item.uid) else {
                continue;
            };
            if e.seq != item.seq || e.location != Location::Active {
                continue;
            }
            e.location = Location::InFlight;
            e.attempts += 1;
            self.scheduling_cycle += 1;
            return Some(Popped {
                pod: e.pod.clone(),
                attempts: e.attempts,
                cycle: self.scheduling_cycle,
            });
        }
        None
    }

    /// The pod was assumed: it leaves the queue.
    pub fn done(&mut self, uid: &str) {
        if self
            .entries
            .get(uid)
            .is_some_and(|e| e.location == Location::InFlight)
        {
            self.entries.remove(uid);
        }
    }

    /// A failed attempt. Unschedulable pods wait for a cluster event,
    /// unless one arrived while they were being scheduled; errors back off.
    pub fn requeue_failed(&mut self, popped: &Popped, unschedulable: bool) {
        let uid = popped.pod.uid.clone();
        let now = Instant::now();
        match self.entries.get_mut(&uid) {
            Some(e) => {
                e.last_failure = Some(now);
                e.attempts = e.attempts.max(popped.attempts);
            }
            None => {
                // Bind failures come back after the pod left the queue.
                self.entries.insert(
                    uid.clone(),
                    Entry {
                        pod: popped.pod.clone(),
                        location: Location::InFlight,
                        timestamp: now,
                        attempts: popped.attempts,
                        seq: 0,
                        last_failure: Some(now),
                    },
                );
            }
        }
        if unschedulable && self.move_request_cycle < popped.cycle {
            if let Some(e) = self.entries.get_mut(&uid) {
                e.location = Location::Unschedulable;
            }
        } else {
            self.push_backoff(&uid);
        }
    }

    /// A cluster event that may make unschedulable pods fit: all of them
    /// go to the active queue, or to backoff while still backing off.
    pub fn move_all_to_active_or_backoff(&mut self) {
        let now = Instant::now();
        let uids: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.location == Location::Unschedulable)
            .map(|(k, _)| k.clone())
            .collect();
        for uid in uids {
            let expired = self
                .entries
                .get(&uid)
                .is_some_and(|e| Self::backoff_expired(e, now));
            if expired {
                self.push_active(&uid, now);
            } else {
                self.push_backoff(&uid);
            }
        }
        self.move_request_cycle = self.scheduling_cycle;
    }

    /// Moves expired backoff pods to active, and unschedulable pods parked
    /// for over 5 minutes; returns whether any became active.
    pub fn flush(&mut self, now: Instant) -> bool {
        let mut moved = false;
        while let Some(Reverse((expiry, seq, uid))) = self.backoff.peek().cloned() {
            if expiry > now {
                break;
            }
            self.backoff.pop();
            if self
                .entries
                .get(&uid)
                .is_some_and(|e| e.seq == seq && e.location == Location::Backoff)
            {
                self.push_active(&uid, now);
                moved = true;
            }
        }
        let stale: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                e.location == Location::Unschedulable
                    && e.last_failure
                        .is_some_and(|t| now.duration_since(t) > MAX_IN_UNSCHEDULABLE)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for uid in stale {
            self.push_active(&uid, now);
            moved = true;
        }
        moved
    }

    /// (active, backoff, unschedulable, gated) counts, for metrics.
    pub fn sizes(&self) -> (usize, usize, usize, usize) {
        let mut s = (0, 0, 0, 0);
        for e in self.entries.values() {
            match e.location {
                Location::Active => s.0 += 1,
                Location::Backoff => s.1 += 1,
                Location::Unschedulable => s.2 += 1,
                Location::Gated => s.3 += 1,
                Location::InFlight => {}
            }
        }
        s
    }

    pub fn location(&self, uid: &str) -> Option<Location> {
        self.entries.get(uid).map(|e| e.location)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn pod(name: &str, priority: i32) -> Arc<PodInfo> {
        let p: Pod = serde_json::from_value(
            json!({"metadata": {"name": name, "uid": name}, "spec": {"containers": []}}),
        )
        .unwrap();
        Arc::new(PodInfo::new(Arc::new(p), priority))
    }

    #[test]
    fn pops_by_priority_then_age() {
        let mut q = SchedulingQueue::new();
        q.add(pod("low", 0), false);
        q.add(pod("high", 100), false);
        q.add(pod("low2", 0), false);
        assert_eq!(q.pop().unwrap().pod.name, "high");
        assert_eq!(q.pop().unwrap().pod.name, "low");
        assert_eq!(q.pop().unwrap().pod.name, "low2");
        assert!(q.pop().is_none());
    }

    #[test]
    fn backoff_doubles_up_to_ten_seconds() {
        assert_eq!(backoff_duration(1), Duration::from_secs(1));
        assert_eq!(backoff_duration(2), Duration::from_secs(2));
        assert_eq!(backoff_duration(4), Duration::from_secs(8));
        assert_eq!(backoff_duration(5), Duration::from_secs(10));
        assert_eq!(backoff_duration(50), Duration::from_secs(10));
    }

    #[test]
    fn unschedulable_pods_wait_for_an_event_then_back_off() {
        let mut q = SchedulingQueue::new();
        q.add(pod("a", 0), false);
        let p = q.pop().unwrap();
        q.requeue_failed(&p, true);
        assert_eq!(q.location("a"), Some(Location::Unschedulable));
        assert!(!q.flush(Instant::now()));
        q.move_all_to_active_or_backoff();
        assert_eq!(q.location("a"), Some(Location::Backoff));
        assert!(q.flush(Instant::now() + Duration::from_millis(1100)));
        assert_eq!(q.pop().unwrap().attempts, 2);
    }

    #[test]
    fn an_event_during_the_attempt_sends_the_pod_to_backoff() {
        let mut q = SchedulingQueue::new();
        q.add(pod("a", 0), false);
        let p = q.pop().unwrap();
        q.move_all_to_active_or_backoff();
        q.requeue_failed(&p, true);
        assert_eq!(q.location("a"), Some(Location::Backoff));
    }

    #[test]
    fn status_only_updates_leave_unschedulable_pods_parked() {
        let mut q = SchedulingQueue::new();
        q.add(pod("a", 0), false);
        let p = q.pop().unwrap();
        q.requeue_failed(&p, true);
        q.update(pod("a", 0), false);
        assert_eq!(q.location("a"), Some(Location::Unschedulable));
    }

    #[test]
    fn gated_pods_enter_when_the_update_lifts_the_gate() {
        let mut q = SchedulingQueue::new();
        q.add(pod("a", 0), true);
        assert!(q.pop().is_none());
        q.update(pod("a", 0), false);
        assert_eq!(q.pop().unwrap().pod.name, "a");
    }
}
