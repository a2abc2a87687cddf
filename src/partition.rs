//! Sharding a suite across CI machines: `--partition slice:M/N` and `--partition hash:M/N`.
//!
//! Both select shard `M` of `N` (1-based) so that the `N` shards together hold every scenario
//! exactly once. `slice` deals scenarios out in turn by their position in the (sorted,
//! filtered) list, which balances counts but moves scenarios between shards when one is added.
//! `hash` keys on the scenario's name with 64-bit FNV-1a, written out here so the assignment is
//! the same on every machine, platform and Rust version (`std`'s `DefaultHasher` promises none
//! of that), and a scenario keeps its shard when others are added or removed.

use std::fmt;
use std::str::FromStr;

/// How scenarios are dealt to shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionKind {
    /// By position: the i-th scenario (0-based) goes to shard `i % N + 1`.
    Slice,
    /// By name: a scenario goes to shard `fnv1a(name) % N + 1`.
    Hash,
}

/// One shard of a partitioned suite: shard `shard` of `total`, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// How scenarios are dealt.
    pub kind: PartitionKind,
    /// This shard, from 1 to `total`.
    pub shard: u64,
    /// How many shards there are.
    pub total: u64,
}

/// Why a `--partition` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid partition `{value}`: {reason} (expected `slice:M/N` or `hash:M/N` with 1 <= M <= N)"
)]
pub struct PartitionError {
    value: String,
    reason: &'static str,
}

impl FromStr for Partition {
    type Err = PartitionError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let refuse = |reason| PartitionError {
            value: value.to_owned(),
            reason,
        };
        let (kind, fraction) = value
            .split_once(':')
            .ok_or_else(|| refuse("no `:` after the kind"))?;
        let kind = match kind {
            "slice" => PartitionKind::Slice,
            "hash" => PartitionKind::Hash,
            _ => return Err(refuse("unknown kind")),
        };
        let (shard, total) = fraction
            .split_once('/')
            .ok_or_else(|| refuse("no `/` between shard and total"))?;
        let shard: u64 = shard
            .parse()
            .map_err(|_| refuse("the shard is not a whole number"))?;
        let total: u64 = total
            .parse()
            .map_err(|_| refuse("the total is not a whole number"))?;
        if total == 0 {
            return Err(refuse("the total must be at least 1"));
        }
        if shard == 0 || shard > total {
            return Err(refuse("the shard must be between 1 and the total"));
        }
        Ok(Partition { kind, shard, total })
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            PartitionKind::Slice => "slice",
            PartitionKind::Hash => "hash",
        };
        write!(f, "{kind}:{}/{}", self.shard, self.total)
    }
}

impl Partition {
    /// Whether the scenario at `position` in the list, called `name`, belongs to this shard.
    pub fn selects(&self, position: usize, name: &str) -> bool {
        let key = match self.kind {
            PartitionKind::Slice => position as u64,
            PartitionKind::Hash => fnv1a_64(name.as_bytes()),
        };
        key % self.total == self.shard - 1
    }

    /// Keeps the items of this shard, in order; `name` gives an item's scenario name.
    pub fn apply<T>(&self, items: Vec<T>, name: impl Fn(&T) -> &str) -> Vec<T> {
        items
            .into_iter()
            .enumerate()
            .filter(|(position, item)| self.selects(*position, name(item)))
            .map(|(_, item)| item)
            .collect()
    }
}

/// 64-bit FNV-1a (Fowler–Noll–Vo), fixed by its published offset basis and prime.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn parses_both_kinds_and_refuses_everything_else() {
        assert_eq!(
            "hash:2/3".parse::<Partition>(),
            Ok(Partition {
                kind: PartitionKind::Hash,
                shard: 2,
                total: 3
            })
        );
        assert_eq!(
            "slice:1/1".parse::<Partition>().map(|p| p.to_string()),
            Ok("slice:1/1".to_owned())
        );
        for bad in [
            "",
            "hash",
            "hash:",
            "hash:1",
            "hash:0/3",
            "hash:4/3",
            "hash:1/0",
            "count:1/2",
            "hash:a/2",
            "hash:1/b",
            "hash:-1/2",
            "slice:1/2/3",
        ] {
            assert!(bad.parse::<Partition>().is_err(), "`{bad}` was accepted");
        }
    }

    #[test]
    fn the_shards_of_either_kind_hold_every_item_exactly_once() {
        let names: Vec<String> = (0..97)
            .map(|i| format!("group-{}/case-{i}", i % 7))
            .collect();
        for kind in [PartitionKind::Slice, PartitionKind::Hash] {
            for total in 1..=5 {
                let mut seen: Vec<String> = (1..=total)
                    .flat_map(|shard| {
                        Partition { kind, shard, total }.apply(names.clone(), |n| n.as_str())
                    })
                    .collect();
                seen.sort();
                let mut expected = names.clone();
                expected.sort();
                assert_eq!(seen, expected, "{kind:?} over {total} shard(s)");
            }
        }
    }

    #[test]
    fn hash_shards_do_not_move_when_scenarios_are_added() {
        let partition = Partition {
            kind: PartitionKind::Hash,
            shard: 2,
            total: 3,
        };
        let before = partition.apply(vec!["a", "b", "c", "d"], |n| n);
        let after = partition.apply(vec!["0", "a", "b", "bb", "c", "d"], |n| n);
        assert!(before.iter().all(|n| after.contains(n)));
    }
}
