//! Shared helpers for the kernel and oracle test tiers.
//!
//! - [`netns`]: throwaway namespaces, veth pairs, AF_PACKET senders, the root/skip policy;
//! - [`oracle`]: real iptables in a namespace as a classifier whose verdict and deciding rule are
//!   read back from its counters.
pub mod netns;
pub mod oracle;
