//! `tailwall`: compile iptables rules into an eBPF bit-vector classifier, attach it, inspect it.
mod cli;

fn main() -> std::process::ExitCode {
    // A closed stdout (`tailwall migrate big.rules | head -1`) ends the command quietly, as it ends `cat`:
    // Rust ignores SIGPIPE, which turns the write error into a panic inside `print!` (exit 101); the
    // default disposition terminates the process on the signal instead, without a message.
    // SAFETY: setting a signal's disposition to SIG_DFL before any thread starts has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    cli::main()
}
