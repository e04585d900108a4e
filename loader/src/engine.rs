//! The kernel as an [`Engine`]: a loaded [`Generation`] run with BPF_PROG_TEST_RUN, its decision record
//! decoded by [`Outcome::from_kernel`] (the one decoder).
use tailwall_compiler::{
    artifact::Artifact,
    outcome::{Engine, EngineError, Outcome},
};

use crate::Generation;

/// A generation and the artifact it was loaded from. Frames arrive on the namespace's loopback
/// device (BPF_PROG_TEST_RUN's default): load the generation with [`Generation::load_nameless`] to
/// judge them as `interp` and `sim` judge a packet without interfaces.
pub struct KernelEngine<'a> {
    pub generation: &'a Generation,
    pub artifact: &'a Artifact,
}

impl Engine for KernelEngine<'_> {
    fn name(&self) -> &'static str {
        "kernel"
    }
    fn run_frame(&mut self, frame: &[u8]) -> Result<Outcome, EngineError> {
        let tr = self.generation.test_run(frame, 1)?;
        Ok(Outcome::from_kernel(
            self.artifact,
            tr.xdp_action,
            &tr.decision,
        )?)
    }
}
