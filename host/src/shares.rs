//! Fair shares of what sigd keeps only so many of at once (pending
//! escalations, waits for an exit): a caller held to shares holds at most
//! an [`SHARE`]th of them, and all such callers together at most half, so
//! a co-tenant, even one with many uids or tokens, leaves room for the
//! operator's own calls. Held to shares: a caller without a token (by its
//! uid; callers whose uid cannot be told share one), and one with a named
//! token (by its principal). Held to none: root, which may signal anything
//! anyway, and the principal of a token given alone
//! ([`SINGLE_TOKEN_PRINCIPAL`]), whoever holds it being the operator.

use crate::auth::SINGLE_TOKEN_PRINCIPAL;
use crate::caller::Caller;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The part of the whole one caller held to shares may hold: an eighth.
pub const SHARE: usize = 8;

/// Who holds a share (see the module's text).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Holder {
    Trusted,
    Principal(Arc<str>),
    Uid(u32),
    Unknown,
}

impl Holder {
    /// Who `caller` is, for its shares.
    pub fn of(caller: &Caller) -> Holder {
        let uid = caller.peer.credentials.map(|credentials| credentials.uid);
        Holder::named(uid, caller.principal.as_deref())
    }

    /// Who a caller of `uid` (if the kernel tells it) presenting
    /// `principal`'s token (if any) is, for its shares.
    pub fn named(uid: Option<u32>, principal: Option<&str>) -> Holder {
        match (uid, principal) {
            (uid, principal) if Holder::trusts(uid, principal) => Holder::Trusted,
            (_, Some(principal)) => Holder::Principal(principal.into()),
            (Some(uid), None) => Holder::Uid(uid),
            (None, None) => Holder::Unknown,
        }
    }

    /// Whether a caller of `uid` (if the kernel tells it) presenting
    /// `principal`'s token (if any) is trusted, held to no share: root, or
    /// the holder of a token given alone (the operator's).
    pub fn trusts(uid: Option<u32>, principal: Option<&str>) -> bool {
        uid == Some(0) || principal == Some(SINGLE_TOKEN_PRINCIPAL)
    }
}

/// Each caller's share of a whole.
#[derive(Debug)]
pub struct Shares {
    /// The most one caller held to shares may hold.
    share: usize,
    /// The most all of them together may hold.
    untrusted: usize,
    /// How many each holder held to shares holds (none: not there).
    held: Mutex<HashMap<Holder, usize>>,
}

/// A refusal: the caller holds its share already, or all callers held to
/// shares hold theirs; `share` is the most that applied.
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
    /// its share already, or all callers held to shares hold theirs.
    pub fn take(self: &Arc<Shares>, holder: &Holder) -> Result<Share, Taken> {
        self.take_many(holder, 1)
    }

    /// `count` more for `holder` (bytes, say), all given back when dropped;
    /// refused if that would be more than its share, or than all callers
    /// held to shares may hold.
    pub fn take_many(self: &Arc<Shares>, holder: &Holder, count: usize) -> Result<Share, Taken> {
        // A trusted caller holds nothing to give back (and shares no
        // counter with other threads: it may be every request).
        if *holder == Holder::Trusted {
            return Ok(Share { _held: None });
        }
        let mut held = self.lock();
        if held.values().sum::<usize>() + count > self.untrusted {
            return Err(Taken {
                share: self.untrusted,
            });
        }
        let holds = held.entry(holder.clone()).or_default();
        if *holds + count > self.share {
            if *holds == 0 {
                held.remove(holder);
            }
            return Err(Taken { share: self.share });
        }
        *holds += count;
        Ok(Share {
            _held: Some(Held {
                shares: self.clone(),
                holder: holder.clone(),
                count,
            }),
        })
    }

    /// How many `holder` holds now.
    pub fn held(&self, holder: &Holder) -> usize {
        self.lock().get(holder).copied().unwrap_or_default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Holder, usize>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One held (nothing, for a trusted caller); given back when dropped.
#[derive(Debug)]
pub struct Share {
    _held: Option<Held>,
}

/// What a caller held to shares holds.
#[derive(Debug)]
struct Held {
    shares: Arc<Shares>,
    holder: Holder,
    count: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self.shares.lock();
        if let Some(count) = held.get_mut(&self.holder) {
            *count -= self.count;
            if *count == 0 {
                held.remove(&self.holder);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A caller held to shares gets an eighth of the whole and no more,
    /// until it gives one back; another's share is its own; all of them
    /// together get half; root and a lone token's holder are never refused.
    #[test]
    fn each_caller_holds_at_most_its_share() {
        let shares = Shares::of(64);
        let tenant = Holder::Uid(1000);
        let mut held: Vec<Share> = (0..8).map(|_| shares.take(&tenant).unwrap()).collect();
        assert_eq!(shares.take(&tenant).unwrap_err(), Taken { share: 8 });
        let others: Vec<Share> = [
            Holder::Principal("ci".into()),
            Holder::Unknown,
            Holder::Uid(1001),
        ]
        .iter()
        .flat_map(|holder| std::iter::repeat_n(holder, 8))
        .map(|holder| shares.take(holder).unwrap())
        .collect();
        assert_eq!(others.len(), 24);
        assert_eq!(
            shares.take(&Holder::Uid(2000)).unwrap_err(),
            Taken { share: 32 }
        );
        let trusted: Vec<Share> = (0..100)
            .map(|_| shares.take(&Holder::Trusted).unwrap())
            .collect();
        held.pop();
        assert_eq!(shares.held(&tenant), 7);
        held.push(shares.take(&tenant).unwrap());
        drop((held, others, trusted));
        assert_eq!(shares.held(&tenant), 0);
        let left = shares.lock();
        assert!(left.is_empty(), "{left:?}");
    }

    /// Taken by weight (the log queue's bytes), a share is what a caller
    /// holds in all: a take past it is refused whole, leaving nothing
    /// behind, and what is given back is all it took.
    #[test]
    fn a_share_is_counted_in_what_each_take_weighs() {
        let shares = Shares::of(800);
        let tenant = Holder::Uid(1000);
        let first = shares.take_many(&tenant, 60).unwrap();
        assert_eq!(
            shares.take_many(&tenant, 41).unwrap_err(),
            Taken { share: 100 }
        );
        let second = shares.take_many(&tenant, 40).unwrap();
        assert_eq!(shares.held(&tenant), 100);
        assert!(shares.take_many(&Holder::Uid(1001), 101).is_err());
        assert!(shares.lock().get(&Holder::Uid(1001)).is_none());
        drop(first);
        assert_eq!(shares.held(&tenant), 40);
        drop(second);
        assert!(shares.lock().is_empty());
        let big = shares.take_many(&Holder::Trusted, 10_000).unwrap();
        drop(big);
    }

    /// Root and a lone token are held to no share; a named token, and a
    /// caller without one, are, each on its own.
    #[test]
    fn who_is_held_to_shares() {
        let caller = |uid: Option<u32>, principal: Option<&str>| {
            Holder::of(&Caller::local(uid, principal.map(String::from)))
        };
        assert_eq!(caller(Some(0), None), Holder::Trusted);
        assert_eq!(caller(Some(0), Some("ci")), Holder::Trusted);
        assert_eq!(caller(None, Some(SINGLE_TOKEN_PRINCIPAL)), Holder::Trusted);
        assert_eq!(
            caller(Some(1000), Some("ci")),
            Holder::Principal("ci".into())
        );
        assert_eq!(caller(Some(1000), None), Holder::Uid(1000));
        assert_eq!(caller(None, None), Holder::Unknown);
    }
}
