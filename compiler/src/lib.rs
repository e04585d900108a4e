//! tailwall's compiler: everything that needs neither root nor the kernel.
//!
//! ```text
//! iptables-save ─nom─▶ syntax::iptables::Ast ─lower─▶ ir::Ruleset ─▶ classify ─▶ plan ─▶ artifact
//!                                                         │                               │
//!                                                      interp (reference)          sim (datapath model)
//! ```
//! Each stage module documents what it guarantees and what it throws away.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod analysis;
pub mod artifact;
pub mod classify;
pub mod diag;
pub mod dump;
pub mod flatten;
pub mod frontend;
pub mod interp;
pub mod ir;
pub mod layout;
pub mod listing;
pub mod logline;
pub mod lower;
pub mod outcome;
pub mod packet;
pub mod passes;
pub mod plan;
pub mod reject;
pub mod sim;
pub mod syntax;
#[cfg(feature = "testgen")]
pub mod testgen;
pub mod yaml;

/// A hash map with foldhash's fast, fixed-seed hasher instead of std's SipHash: for the compiler's hot
/// maps keyed by rule vectors and prefixes (hashing a 20,000-position vector with SipHash was ~6 % of a
/// compile). Keys come from the ruleset being compiled, not from the network, so flooding resistance
/// is not needed; the fixed seed keeps runs reproducible. No output may depend on its iteration order
/// (none does: the users sort or only look up). docs/decisions/0017.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;
