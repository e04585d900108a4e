//! The XDP attach mode: a leaf type shared by the errors, the lifecycle and the CLI.
use aya::programs::XdpMode;
use serde::{Deserialize, Serialize};

/// XDP attach mode of a live link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// In the driver (`XDP_FLAGS_DRV_MODE`); fails on drivers without XDP support (bridges, `lo`).
    Native,
    /// In the stack (`XDP_FLAGS_SKB_MODE`); works on every device, slower.
    Generic,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Native => "native",
            Mode::Generic => "generic",
        })
    }
}

impl Mode {
    pub(crate) fn xdp(self) -> XdpMode {
        match self {
            Mode::Native => XdpMode::Driver,
            Mode::Generic => XdpMode::Skb,
        }
    }
}

/// The mode an apply asks for: one mode, or native with a fallback to generic (the reason is reported
/// in [`crate::AttachOutcome::fallback`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeRequest {
    /// Exactly this mode; an interface that cannot do it is an error.
    Exact(Mode),
    /// Native if the driver supports it, else generic.
    Auto,
}

impl From<Mode> for ModeRequest {
    fn from(m: Mode) -> ModeRequest {
        ModeRequest::Exact(m)
    }
}
