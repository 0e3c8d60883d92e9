//! Fair shares of what sigd keeps only so many of at once (pending
//! escalations, waits for an exit): no one caller holds more than
//! [`SHARE`] of them, so a co-tenant that fills its own share leaves the
//! rest to everyone else, the operator's calls among them. Root is held to
//! no share: it may signal anything anyway, and it is who the rest are kept
//! for. (A co-tenant with many uids or tokens still has a share for each.)

use crate::caller::Caller;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The part of the whole one caller may hold: an eighth.
pub const SHARE: usize = 8;

/// Who holds a share: root, or a caller as its token names it, else as
/// the kernel does (one that neither can tell shares with all such).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Holder {
    Root,
    Principal(Arc<str>),
    Uid(u32),
    Unknown,
}

impl Holder {
    /// Who `caller` is, for its shares.
    pub fn of(caller: &Caller) -> Holder {
        let uid = caller.peer.credentials.map(|credentials| credentials.uid);
        match (uid, &caller.principal) {
            (Some(0), _) => Holder::Root,
            (_, Some(principal)) => Holder::Principal(principal.as_str().into()),
            (Some(uid), None) => Holder::Uid(uid),
            (None, None) => Holder::Unknown,
        }
    }
}

/// Each caller's share of a whole.
#[derive(Debug)]
pub struct Shares {
    /// The most one caller may hold.
    share: usize,
    held: Mutex<HashMap<Holder, usize>>,
}

/// A refusal: the caller holds its share already, `share`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    pub share: usize,
}

impl Shares {
    /// Shares of a whole of `whole`: each at most a [`SHARE`]th of it
    /// (and at least one).
    pub fn of(whole: usize) -> Arc<Shares> {
        Arc::new(Shares {
            share: (whole / SHARE).max(1),
            held: Mutex::default(),
        })
    }

    /// One more for `holder`, given back when dropped; refused if it holds
    /// its share already.
    pub fn take(self: &Arc<Shares>, holder: &Holder) -> Result<Share, Taken> {
        if *holder != Holder::Root {
            let mut held = self.lock();
            let count = held.entry(holder.clone()).or_default();
            if *count >= self.share {
                return Err(Taken { share: self.share });
            }
            *count += 1;
        }
        Ok(Share {
            shares: self.clone(),
            holder: holder.clone(),
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

/// One held; given back when dropped.
#[derive(Debug)]
pub struct Share {
    shares: Arc<Shares>,
    holder: Holder,
}

impl Drop for Share {
    fn drop(&mut self) {
        if self.holder == Holder::Root {
            return;
        }
        let mut held = self.shares.lock();
        if let Some(count) = held.get_mut(&self.holder) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.holder);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A caller gets an eighth of the whole and no more, until it gives
    /// one back; another caller's share is its own; root is never refused.
    #[test]
    fn each_caller_holds_at_most_its_share() {
        let shares = Shares::of(64);
        let (tenant, other) = (Holder::Uid(1000), Holder::Principal("ci".into()));
        let mut held: Vec<Share> = (0..8).map(|_| shares.take(&tenant).unwrap()).collect();
        assert_eq!(shares.take(&tenant).unwrap_err(), Taken { share: 8 });
        assert!(shares.take(&other).is_ok());
        let root: Vec<Share> = (0..100)
            .map(|_| shares.take(&Holder::Root).unwrap())
            .collect();
        held.pop();
        assert_eq!(shares.held(&tenant), 7);
        held.push(shares.take(&tenant).unwrap());
        drop(held);
        drop(root);
        assert_eq!(shares.held(&tenant), 0);
        assert!(shares.lock().is_empty(), "a holder with nothing was kept");
    }
}
