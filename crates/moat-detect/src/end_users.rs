//! End users behind keys, in bounded memory: ids of bounded length, at most so many per account
//! and in total, the least recently seen evicted first and flagged ones kept longest.
//!
//! The end-user id is the client's own string (OpenAI `user`, Anthropic `metadata.user_id`), so
//! a client with one key chooses both how long each id is and how many there are. Ids up to
//! [`MAX_END_USER_ID`] bytes are kept as written; a longer one becomes `sha256:` and the hex
//! SHA-256 of the whole id ([`end_user_id`]), the same for every request that sends it, so it is
//! still tracked as one end user. The gateway applies the same function before the record, the
//! board and the detector see the id, so all three name an end user alike.
//!
//! Eviction: each account keeps its end users in two insertion-ordered maps, moved to the back
//! when seen, one for end users never flagged and one for flagged ones. When an account is full,
//! or the detector is, the least recently seen unflagged end user of the account (when the
//! detector is full: of the account holding the most) goes first; a flagged one only when the
//! account holds nothing else. A client that churns ids therefore evicts only its own account's
//! oldest unflagged end users. An evicted end user seen again starts afresh.

use std::borrow::Cow;

use hashlink::linked_hash_map::RawEntryMut;
use hashlink::LinkedHashMap;
use sha2::{Digest, Sha256};

use crate::account::Track;

/// Longest end-user id kept as written, in bytes; longer ones are replaced by their digest form.
pub const MAX_END_USER_ID: usize = 128;

/// The prefix of a digest-form id.
const DIGEST_PREFIX: &str = "sha256:";

/// The id under which an end user is tracked, recorded and actioned: `raw` itself up to
/// [`MAX_END_USER_ID`] bytes, else `sha256:` and the 64 hex digits of the SHA-256 of `raw`
/// (71 bytes). Idempotent: a digest-form id maps to itself.
pub fn end_user_id(raw: &str) -> Cow<'_, str> {
    if raw.len() <= MAX_END_USER_ID {
        return Cow::Borrowed(raw);
    }
    let digest = Sha256::digest(raw.as_bytes());
    let mut out = String::with_capacity(DIGEST_PREFIX.len() + 64);
    out.push_str(DIGEST_PREFIX);
    for b in digest {
        out.push(hex_digit(b >> 4));
        out.push(hex_digit(b & 0x0f));
    }
    Cow::Owned(out)
}

fn hex_digit(n: u8) -> char {
    char::from(if n < 10 { b'0' + n } else { b'a' + n - 10 })
}

/// How many end users the detector keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// End users kept in total, over all accounts.
    pub total: usize,
    /// End users kept per account.
    pub per_account: usize,
}

impl Capacity {
    /// 100,000 in total, 20,000 per account: see `docs/detection.md` for the memory this takes.
    pub const DEFAULT: Capacity = Capacity {
        total: 100_000,
        per_account: 20_000,
    };
}

impl Default for Capacity {
    fn default() -> Self {
        Capacity::DEFAULT
    }
}

/// One account's end users, least recently seen first.
#[derive(Debug, Default)]
struct Users {
    fresh: LinkedHashMap<Box<str>, Track>,
    flagged: LinkedHashMap<Box<str>, Track>,
}

impl Users {
    fn len(&self) -> usize {
        self.fresh.len() + self.flagged.len()
    }

    /// Drops the least recently seen end user, unflagged first.
    fn evict_one(&mut self) -> bool {
        self.fresh.pop_front().is_some() || self.flagged.pop_front().is_some()
    }
}

/// The end users of every account (by account index), within a [`Capacity`].
#[derive(Debug)]
pub(crate) struct EndUsers {
    by_account: Vec<Users>,
    total: usize,
    capacity: Capacity,
    evicted: u64,
}

impl EndUsers {
    pub(crate) fn new(capacity: Capacity) -> Self {
        EndUsers {
            by_account: Vec::new(),
            total: 0,
            capacity: Capacity {
                total: capacity.total.max(1),
                per_account: capacity.per_account.max(1),
            },
            evicted: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.total
    }

    pub(crate) fn evicted(&self) -> u64 {
        self.evicted
    }

    /// The track of `user` behind account `idx`, marked as seen now; created (evicting as the
    /// capacity requires) when absent. Returns the track and whether it is new.
    pub(crate) fn touch(&mut self, idx: u32, user: &str) -> (&mut Track, bool) {
        let i = idx as usize;
        if self.by_account.len() <= i {
            self.by_account.resize_with(i + 1, Users::default);
        }
        let known = self.by_account[i].fresh.contains_key(user)
            || self.by_account[i].flagged.contains_key(user);
        if !known {
            self.make_room(i);
            self.by_account[i]
                .fresh
                .insert(user.into(), Track::default());
            self.total += 1;
        }
        let users = &mut self.by_account[i];
        let map = if users.flagged.contains_key(user) {
            &mut users.flagged
        } else {
            &mut users.fresh
        };
        let track = match map.raw_entry_mut().from_key(user) {
            RawEntryMut::Occupied(mut o) => {
                o.to_back();
                o.into_mut()
            }
            // Unreachable: the user was found or inserted above; inserting keeps this total.
            RawEntryMut::Vacant(v) => v.insert(user.into(), Track::default()).1,
        };
        (track, !known)
    }

    /// Moves `user` of account `idx` to the flagged end users, kept longest.
    pub(crate) fn mark_flagged(&mut self, idx: u32, user: &str) {
        let Some(users) = self.by_account.get_mut(idx as usize) else {
            return;
        };
        if let Some((k, t)) = users.fresh.remove_entry(user) {
            users.flagged.insert(k, t);
        }
    }

    /// The track of `user` behind account `idx`, if kept.
    pub(crate) fn get(&self, idx: u32, user: &str) -> Option<&Track> {
        let users = self.by_account.get(idx as usize)?;
        users.flagged.get(user).or_else(|| users.fresh.get(user))
    }

    /// Every kept end user: (account index, id, track).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &str, &Track)> {
        self.by_account.iter().enumerate().flat_map(|(i, u)| {
            u.flagged
                .iter()
                .chain(u.fresh.iter())
                .map(move |(k, t)| (i as u32, &**k, t))
        })
    }

    /// The flagged end users: (account index, id, track).
    pub(crate) fn flagged(&self) -> impl Iterator<Item = (u32, &str, &Track)> {
        self.by_account
            .iter()
            .enumerate()
            .flat_map(|(i, u)| u.flagged.iter().map(move |(k, t)| (i as u32, &**k, t)))
    }

    /// Frees a place for one more end user of account `i`.
    fn make_room(&mut self, i: usize) {
        if self.by_account[i].len() >= self.capacity.per_account {
            self.evict_from(i);
        }
        if self.total >= self.capacity.total {
            // The account holding the most gives one up: a client churning ids evicts its own.
            let largest = self
                .by_account
                .iter()
                .enumerate()
                .max_by_key(|(_, u)| u.len())
                .map(|(j, _)| j);
            if let Some(j) = largest {
                self.evict_from(j);
            }
        }
    }

    fn evict_from(&mut self, i: usize) {
        if self.by_account[i].evict_one() {
            self.total -= 1;
            self.evicted += 1;
        }
    }
}

/// Bytes one end user can hold at most, beside its id: the hash-map slot and the [`Track`]
/// with every bounded list full. Used by the documented memory bound (`docs/detection.md`).
pub fn max_bytes_per_end_user() -> usize {
    // Two pointers of the linked list, the key's fat pointer, the track, and hashbrown's
    // control byte and pointer per slot (the table is at most 7/8 full, so up to twice the
    // slots after a resize: counted twice).
    let slot = std::mem::size_of::<Box<str>>() + std::mem::size_of::<Track>() + 2 * 8;
    let table = 2 * (std::mem::size_of::<usize>() + 1);
    slot + table + Track::max_heap_bytes() + MAX_END_USER_ID
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_are_kept_and_long_ones_digested_stably() {
        assert_eq!(end_user_id("u_42"), "u_42");
        let exact = "a".repeat(MAX_END_USER_ID);
        assert_eq!(end_user_id(&exact), exact.as_str());
        let long = "b".repeat(1 << 20);
        let id = end_user_id(&long);
        assert!(id.starts_with("sha256:"));
        assert_eq!(id.len(), 71);
        assert_eq!(id, end_user_id(&long), "the same id every time");
        assert_ne!(id, end_user_id(&format!("{long}c")));
        assert_eq!(end_user_id(&id), id, "idempotent");
    }

    #[test]
    fn an_account_keeps_its_most_recent_end_users_and_its_flagged_ones() {
        let mut u = EndUsers::new(Capacity {
            total: 100,
            per_account: 3,
        });
        u.touch(0, "flagged");
        u.mark_flagged(0, "flagged");
        u.touch(0, "a");
        u.touch(0, "b");
        u.touch(0, "a"); // a is now more recent than b
        let (_, new) = u.touch(0, "c");
        assert!(new);
        assert_eq!(u.len(), 3);
        assert!(u.get(0, "b").is_none(), "the least recently seen went");
        assert!(u.get(0, "a").is_some() && u.get(0, "c").is_some());
        assert!(
            u.get(0, "flagged").is_some(),
            "flagged ones are kept longest"
        );
        for i in 0..1000 {
            u.touch(0, &format!("churn{i}"));
        }
        assert_eq!(u.len(), 3);
        assert!(u.get(0, "flagged").is_some());
        assert_eq!(u.evicted(), 1001);
        assert_eq!(u.flagged().count(), 1);
    }

    #[test]
    fn the_total_is_taken_from_the_account_holding_the_most() {
        let mut u = EndUsers::new(Capacity {
            total: 10,
            per_account: 10,
        });
        u.touch(1, "quiet");
        for i in 0..100 {
            u.touch(0, &format!("u{i}"));
        }
        assert_eq!(u.len(), 10);
        assert!(u.get(1, "quiet").is_some(), "the churning account pays");
        assert_eq!(u.iter().count(), 10);
    }

    #[test]
    fn memory_per_end_user_is_bounded_by_the_documented_figure() {
        // A track with every bounded list filled past its cap.
        let mut t = Track::default();
        for i in 0..10_000u64 {
            t.seen_recently(i.wrapping_mul(0x9e37_79b9_7f4a_7c15), 10);
            t.add_system(i);
            t.add_net(i);
            t.add_affix(i);
            t.keep_evidence("req_000000000000000000000000");
        }
        assert!(t.heap_bytes() <= Track::max_heap_bytes());
        // The figure docs/detection.md states.
        assert!(
            max_bytes_per_end_user() <= 2_500,
            "{}",
            max_bytes_per_end_user()
        );
    }
}
