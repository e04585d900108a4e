//! Behaviour analysis: does every packet get the same verdict from two rulesets (`tailwall diff`), from
//! the IR and its compiled tables (translation validation on every compile), and which packets tell
//! them apart.
//!
//! ```text
//! Ruleset ──Program::from_ruleset──▶ Program ─┐
//!                                             ├─ search::compare ─▶ Comparison ─▶ Witness (packet)
//! Artifact ─Program::from_artifact─▶ Program ─┘     (per hook, over one Space)
//! ```
//! - [`space`]: the header space of a hook, one dimension per field of the field table plus the
//!   transport-header state;
//! - [`program`]: a ruleset (user chains inlined) or an artifact's tables as a list of boxes;
//! - [`search`]: the decision procedure, complete (no sampling): splits the space into the atoms of
//!   the boxes still in play, pruning boxes where both programs provably agree;
//! - [`witness`]: a concrete packet of a box, its SPEC spelling, a description of the box.
//!
//! Every difference comes with a packet that [`replay`] (which is `interp`) runs through both
//! rulesets; callers check that the verdicts are the ones the search found (the tests do it for every
//! generated pair, `diff` and `compile` for every packet they print). See
//! docs/decisions/0007-analysis-decision-procedure.md for the choice of procedure and its measurements.
pub mod explain;
pub mod program;
pub mod search;
pub mod set;
pub mod space;
pub mod witness;

pub use program::{Program, ProgramError};
pub use search::{compare, compare_with, Comparison, Difference, Options};
pub use set::Set;
pub use space::Space;
pub use witness::Witness;

use crate::artifact::Artifact;
use crate::interp::{self, Outcome};
use crate::ir::{Hook, Ruleset};

/// The outcome `interp` gives a witness packet under `rs` at `hook`.
pub fn replay(rs: &Ruleset, hook: Hook, w: &Witness) -> Outcome {
    interp::run_with(rs, hook, &w.meta, &w.decoded())
}

/// One hook's comparison of two rulesets.
#[derive(Clone, Debug)]
pub struct HookDiff {
    /// The hook compared (both rulesets' chain for it, user chains inlined).
    pub hook: Hook,
    /// The header space of the hook both programs were built over.
    pub space: Space,
    /// The search's result: the differences kept and the work done.
    pub comparison: Comparison,
}

/// A packet the two sides decide differently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counterexample {
    /// The hook at which the two rulesets disagree.
    pub hook: Hook,
    /// A concrete packet of the region (replay it with [`replay`]).
    pub witness: Witness,
    /// What the search says each side decides for every packet of the region.
    pub old: Outcome,
    /// The new ruleset's outcome for the region.
    pub new: Outcome,
    /// The region of packets (one box of the space) the witness was taken from, in words, when simple.
    pub description: Option<String>,
}

/// Compare `old` and `new` at `hook`, keeping at most `keep` differences (one per distinct pair of
/// deciders). `progress` is called with the nodes visited, every 4096 nodes.
///
/// # Errors
/// [`ProgramError::Families`] when the rulesets are of different families; [`ProgramError::TooLarge`]
/// when inlining a ruleset's user chains gives too many boxes.
pub fn diff(
    old: &Ruleset,
    new: &Ruleset,
    hook: Hook,
    keep: usize,
    progress: &mut dyn FnMut(u64),
) -> Result<HookDiff, ProgramError> {
    if old.family != new.family {
        return Err(ProgramError::Families {
            old: old.family,
            new: new.family,
        });
    }
    let space = Space::new(hook, &[old, new]);
    let a = Program::from_ruleset(&space, old)?;
    let b = Program::from_ruleset(&space, new)?;
    let comparison = compare(&space, &a, &b, keep, progress);
    Ok(HookDiff {
        hook,
        space,
        comparison,
    })
}

impl HookDiff {
    /// One counterexample per kept difference.
    pub fn counterexamples(&self) -> Vec<Counterexample> {
        self.comparison
            .differences
            .iter()
            .map(|d| Counterexample {
                hook: self.hook,
                witness: Witness::of(&self.space, &d.region),
                old: d.a,
                new: d.b,
                description: witness::describe(&self.space, &d.region),
            })
            .collect()
    }
}

/// What translation validation measured, summed over the hooks proved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validation {
    /// The hooks whose regions were proved (every hook the artifact holds a region of, in
    /// [`Hook::ALL`] order).
    pub hooks: Vec<Hook>,
    /// Search nodes visited.
    pub nodes: u64,
    /// Boxes of the IR and of the tables.
    pub entries: (usize, usize),
}

/// The compiled tables do not decide as the IR does.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValidationError {
    /// The IR or the artifact could not be turned into a program (too large, malformed tables).
    #[error(transparent)]
    Program(#[from] ProgramError),
    /// A packet the tables decide differently from the IR: a compiler bug, never a user error.
    #[error("internal compiler error: the compiled tables for {} decide `{spec}` as {} ({:?}), the rules as {} ({:?})", hook.chain_name(), compiled.verdict.as_str(), compiled.decided, ir.verdict.as_str(), ir.decided)]
    Mismatch {
        /// The artifact's hook.
        hook: Hook,
        /// The packet, in the witness spelling (`tcp 10.0.0.1:1234 -> 10.0.0.2:22`).
        spec: String,
        /// What the IR (via interp's semantics) decides.
        ir: Outcome,
        /// What the compiled tables decide.
        compiled: Outcome,
    },
}

/// Prove that the artifact's tables (as the datapath and `sim` read them) decide every packet of
/// every hook with the same verdict as the IR: each hook's region (INPUT, FORWARD, OUTPUT — the entry
/// program judges by the one the FIB decides, so every region is live) against the ruleset at that
/// hook, in the region of `rs`'s family; else name a packet where they do not. A generation of two
/// rulesets is validated once per ruleset.
///
/// # Errors
/// [`ValidationError::Program`] when a program cannot be built, [`ValidationError::Mismatch`] with the
/// first differing packet found.
pub fn validate(rs: &Ruleset, art: &Artifact) -> Result<Validation, ValidationError> {
    validate_with(rs, art, &mut |_, _| {})
}

/// [`validate`], calling `progress(hook, nodes)` when it starts proving a hook (`nodes` 0) and every
/// 4096 search nodes of that hook (the nodes visited in it so far), for a progress line on stderr.
///
/// # Errors
/// As [`validate`].
pub fn validate_with(
    rs: &Ruleset,
    art: &Artifact,
    progress: &mut dyn FnMut(Hook, u64),
) -> Result<Validation, ValidationError> {
    let mut v = Validation {
        hooks: Vec::new(),
        nodes: 0,
        entries: (0, 0),
    };
    for hook in Hook::ALL {
        if art.region(hook, rs.family).is_none() {
            continue;
        }
        progress(hook, 0);
        let space = Space::new(hook, &[rs]);
        let ir = Program::from_ruleset(&space, rs)?;
        let tables = Program::from_artifact(&space, art, rs.family)?;
        let c = compare(&space, &ir, &tables, 1, &mut |n| progress(hook, n));
        if let Some(d) = c.differences.first() {
            return Err(ValidationError::Mismatch {
                hook,
                spec: Witness::of(&space, &d.region).spec(),
                ir: d.a,
                compiled: d.b,
            });
        }
        v.hooks.push(hook);
        v.nodes += c.nodes;
        v.entries.0 += ir.entries.len();
        v.entries.1 += tables.entries.len();
    }
    Ok(v)
}
