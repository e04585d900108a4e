//! `tailwall`: compile iptables rules into an eBPF bit-vector classifier, attach it, inspect it.
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
