//! `tailwall`: compile iptables rules into an eBPF bit-vector classifier, attach it, inspect it.
// The CLI (src/cli/) is wired in once the loader, front-end and sim APIs it calls have landed.
fn main() {}
