//! Fair shares of what sigd keeps only so many of at once (pending
//! escalations, waits for an exit), for callers the operator did not vouch
//! for: a caller without a token (known by its uid) holds at most an
//! [`SHARE`]th of them, and all such callers together at most half. So a
//! co-tenant, even one with many uids, leaves room for the operator's own
//! calls. Root and callers with a token are held to no share: root may
//! signal anything anyway, and a token is the operator's to give (where
//! tokens are required, every caller has one and no share applies).

use crate::caller::Caller;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The part of the whole one caller without a token may hold: an eighth.
pub const SHARE: usize = 8;

/// Who holds a share: root or a caller with a token (held to none), or a
/// caller without one as the kernel knows it (those it cannot tell share
/// one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Holder {
    Trusted,
    Uid(u32),
    Unknown,
}

impl Holder {
    /// Who `caller` is, for its shares.
    pub fn of(caller: &Caller) -> Holder {
        let uid = caller.peer.credentials.map(|credentials| credentials.uid);
        match (uid, &caller.principal) {
            (Some(0), _) | (_, Some(_)) => Holder::Trusted,
            (Some(uid), None) => Holder::Uid(uid),
            (None, None) => Holder::Unknown,
        }
    }
}

/// Each caller's share of a whole.
#[derive(Debug)]
pub struct Shares {
    /// The most one caller without a token may hold.
    share: usize,
    /// The most all of them together may hold.
    untrusted: usize,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    by: HashMap<Holder, usize>,
    /// The sum of `by`.
    all: usize,
}

/// A refusal: the caller holds its share already, or all callers without
/// a token hold theirs; `share` is the most that applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    pub share: usize,
}

impl Shares {
    /// Shares of a whole of `whole`: each at most a [`SHARE`]th of it
    /// (and at least one), all together at most half (at least one).
    pub fn of(whole: usize) -> Arc<Shares> {
        Arc::new(Shares {
            share: (whole / SHARE).max(1),
            untrusted: (whole / 2).max(1),
            held: Mutex::default(),
        })
    }

    /// One more for `holder`, given back when dropped; refused if it holds
    /// its share already, or all callers without a token hold theirs.
    pub fn take(self: &Arc<Shares>, holder: Holder) -> Result<Share, Taken> {
        if holder != Holder::Trusted {
            let mut held = self.lock();
            if held.all >= self.untrusted {
                return Err(Taken {
                    share: self.untrusted,
                });
            }
            let count = held.by.entry(holder).or_default();
            if *count >= self.share {
                return Err(Taken { share: self.share });
            }
            *count += 1;
            held.all += 1;
        }
        Ok(Share {
            shares: self.clone(),
            holder,
        })
    }

    /// How many `holder` holds now.
    pub fn held(&self, holder: Holder) -> usize {
        self.lock().by.get(&holder).copied().unwrap_or_default()
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One held; given back when dropped.
#[derive(Debug)]
pub struct Share {
    shares: Arc<Shares>,
    holder: Holder,
}

impl Drop for Share {
    fn drop(&mut self) {
        if self.holder == Holder::Trusted {
            return;
        }
        let mut held = self.shares.lock();
        if let Some(count) = held.by.get_mut(&self.holder) {
            *count -= 1;
            if *count == 0 {
                held.by.remove(&self.holder);
            }
            held.all -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A caller without a token gets an eighth of the whole and no more,
    /// until it gives one back; another's share is its own; all of them
    /// together get half; root and token holders are never refused.
    #[test]
    fn each_caller_holds_at_most_its_share() {
        let shares = Shares::of(64);
        let tenant = Holder::Uid(1000);
        let mut held: Vec<Share> = (0..8).map(|_| shares.take(tenant).unwrap()).collect();
        assert_eq!(shares.take(tenant).unwrap_err(), Taken { share: 8 });
        let others: Vec<Share> = (1..=2)
            .flat_map(|n| (0..8).map(move |_| Holder::Uid(1000 + n)))
            .chain(std::iter::repeat_n(Holder::Unknown, 8))
            .map(|holder| shares.take(holder).unwrap())
            .collect();
        assert_eq!(others.len(), 24);
        assert_eq!(
            shares.take(Holder::Uid(2000)).unwrap_err(),
            Taken { share: 32 }
        );
        let trusted: Vec<Share> = (0..100)
            .map(|_| shares.take(Holder::Trusted).unwrap())
            .collect();
        held.pop();
        assert_eq!(shares.held(tenant), 7);
        held.push(shares.take(tenant).unwrap());
        drop((held, others, trusted));
        assert_eq!(shares.held(tenant), 0);
        let left = shares.lock();
        assert!(left.by.is_empty() && left.all == 0, "{left:?}");
    }
}
