//! Static analysis passes over a checked [`crate::ir::Ruleset`], one module per pass.
//!
//! Passes never change the ruleset: they return diagnostics (warnings and notes, located at the rule
//! they are about) for `tailwall check`. They assume the IR invariants of [`crate::ir::verify`].
pub mod shadow;

use crate::diag::Diagnostic;
use crate::ir::Ruleset;

/// Run every pass; diagnostics in rule order.
pub fn run_all(rs: &Ruleset) -> Vec<Diagnostic> {
    shadow::check(rs)
}

/// [`run_all`], calling `progress` with the number of rules examined since the last call (for a
/// progress report on long runs).
pub fn run_all_with(rs: &Ruleset, progress: &mut dyn FnMut(usize)) -> Vec<Diagnostic> {
    shadow::check_with(rs, progress)
}
