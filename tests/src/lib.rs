//! Shared helpers for the kernel and oracle test tiers.
//!
//! - [`corpus`]: the shared regression corpus (`tests/corpus/*.yaml`) every engine runs;
//! - [`netns`]: throwaway namespaces, veth pairs, AF_PACKET senders, the root/skip policy;
//! - [`oracle`]: real iptables in a namespace as a classifier whose verdict and deciding rule are
//!   read back from its counters;
//! - [`restore_gen`] / [`restore_diff`]: generated restore files and the differential test of the
//!   iptables front end against `iptables-legacy-restore`.
pub mod corpus;
pub mod netns;
pub mod oracle;
pub mod restore_diff;
pub mod restore_gen;
