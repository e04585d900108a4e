//! Surface syntaxes.
pub mod iptables;
